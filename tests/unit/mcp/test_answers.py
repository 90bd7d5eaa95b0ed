"""The one encoder of a tool answer's text, and the direct path's response body."""

from __future__ import annotations

import json

import mcp_types as types

from devmesh.mcp.answers import ToolAnswer, encode
from devmesh.mcp.direct import response_body

STAMP = {types.SERVER_INFO_META_KEY: {"name": "developer-mesh", "version": "0.1.0"}}


def test_an_answer_is_compact_json_and_its_text_is_its_structured_content() -> None:
    answer = ToolAnswer.of({"build": {"id": 1, "state": "ok"}, "note": "é"})
    assert answer.text == '{"build":{"id":1,"state":"ok"},"note":"é"}'
    assert json.loads(answer.text) == answer.structured
    assert answer.encoded == answer.text.encode()


def test_what_orjson_refuses_is_still_encoded_as_json_writes_it() -> None:
    assert json.loads(encode({1: "integer key"})) == {"1": "integer key"}
    assert json.loads(encode({"text": "lone \ud800 surrogate"})) == {
        "text": "lone \ud800 surrogate"
    }
    assert json.loads(encode({"big": 2**70})) == {"big": 2**70}


def test_the_response_body_is_the_sdks_result_with_the_stamp() -> None:
    answer = ToolAnswer.of({"id": 1})
    body = json.loads(response_body(7, answer, encode(STAMP)))
    assert body == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {
            "content": [{"text": '{"id":1}', "type": "text"}],
            "isError": False,
            "resultType": "complete",
            "structuredContent": {"id": 1},
            "_meta": STAMP,
        },
    }


def test_an_error_text_with_a_lone_surrogate_still_makes_a_json_body() -> None:
    answer = ToolAnswer(text="upstream said \ud800", is_error=True)
    body = json.loads(response_body("r", answer, encode(STAMP)))
    assert body["result"] == {
        "content": [{"text": "upstream said \ud800", "type": "text"}],
        "isError": True,
        "resultType": "complete",
        "_meta": STAMP,
    }
