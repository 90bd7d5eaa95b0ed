"""Log lines from other libraries render like ours, tracebacks included."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from devmesh.config import LoggingSettings
from devmesh.observability.logging import configure_logging


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_uvicorn_error_with_a_traceback_renders_the_traceback(
    fresh_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LoggingSettings(level="info", format="json"))
    try:
        raise RuntimeError("boom in the app")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "Exception in ASGI application"
    assert line["logger"] == "uvicorn.error"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "RuntimeError: boom in the app" in line["exception"]
    assert "<traceback object" not in json.dumps(line)
