"""The provider kit's upstream pieces: Retry-After, URLs and redaction."""

from __future__ import annotations

import base64
import email.utils
import time

import httpx
import pytest

from devmesh.adapters.upstream import MAX_RETRY_AFTER_S, Redactor, join_url, retry_after
from devmesh.domain.errors import AdapterError
from devmesh.domain.models import Credentials


@pytest.mark.parametrize(
    "value",
    ["99999999", "1" + "0" * 400, email.utils.formatdate(time.time() + 10**8, usegmt=True)],
)
def test_a_huge_retry_after_is_clamped(value: str) -> None:
    response = httpx.Response(429, headers={"Retry-After": value})
    assert retry_after(response) == MAX_RETRY_AFTER_S


def test_a_modest_retry_after_is_kept() -> None:
    assert retry_after(httpx.Response(503, headers={"Retry-After": "7"})) == 7.0


def test_join_url_appends_the_path_and_drops_userinfo_query_and_fragment() -> None:
    joined = join_url("http://u:p@ci:8010/prefix/?token=x#frag", "/api/v2/builds/a%2Fb")
    assert str(joined) == "http://ci:8010/prefix/api/v2/builds/a%2Fb"


def test_basic_credentials_are_redacted_raw_in_base64_and_url_encoded() -> None:
    redactor = Redactor.of(Credentials(type="basic", username="admin", password="p@ss w/rd"))
    pair = base64.b64encode(b"admin:p@ss w/rd").decode()
    text = redactor.redact(f"x {pair} y p@ss w/rd z p%40ss%20w%2Frd")
    assert text == "x [redacted] y [redacted] z [redacted]"


def test_header_shaped_credentials_are_redacted_whoever_they_belong_to() -> None:
    text = Redactor().redact(
        '{"Authorization": "Bearer abc.def", "Cookie": "sid=42"} Basic Zm9vOmJhcg=='
    )
    assert "abc.def" not in text and "sid=42" not in text and "Zm9vOmJhcg" not in text


def test_no_upstream_text_is_excerpted_from_a_refusal() -> None:
    assert Redactor().excerpt("denied for role admins", status=403) == ""
    assert Redactor().excerpt("boom " * 100, status=500).endswith("…")


def test_scrub_redacts_an_errors_message_and_details_in_place() -> None:
    redactor = Redactor(["s3cret-token"])
    error = AdapterError("upstream said s3cret-token", details={"said": ["s3cret-token"]})
    redactor.scrub(error)
    assert (error.message, str(error), error.details) == (
        "upstream said [redacted]",
        "upstream said [redacted]",
        {"said": ["[redacted]"]},
    )
