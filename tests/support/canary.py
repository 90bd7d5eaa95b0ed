"""A canary secret for the whole suite, and the watch that it never leaks.

Tests that store credentials or pass an upstream token use ``CANARY`` for it. The
session logs at debug level, and every log record, every response body the shared
HTTP clients receive, every app's metrics, and every test's failure report and
captured output are searched for it. A sighting fails the session, naming where.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from devmesh.config import LoggingSettings
from devmesh.observability.logging import configure_logging

__all__ = ["CANARY", "watch"]

CANARY = f"dmcanary-{secrets.token_hex(12)}"
_sightings: list[str] = []


def watch(where: str, text: str | bytes) -> None:
    """Record a sighting if ``text`` holds the canary."""
    needle = CANARY.encode() if isinstance(text, bytes) else CANARY
    if needle in text:  # type: ignore[operator]
        _sightings.append(where)


class _LogWatch(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        # The structlog event dict, the rendered message and any traceback.
        watch(f"log record {record.name}", f"{record.msg!r} {record.getMessage()}")
        if record.exc_info:
            watch(
                f"log traceback {record.name}", logging.Formatter().formatException(record.exc_info)
            )


_HANDLER = _LogWatch(level=logging.DEBUG)


@pytest.fixture(scope="session", autouse=True)
def _logs_as_in_production() -> Iterator[None]:
    # The service's own logging set-up, at debug level so the watch sees everything.
    configure_logging(LoggingSettings(level="debug", format="json"))
    yield


@pytest.fixture(autouse=True)
def _log_watch_attached() -> Iterator[None]:
    # Attached per test: a CLI test that configures logging replaces root's handlers.
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    if root.level > logging.DEBUG:
        root.setLevel(logging.DEBUG)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    watch(f"failure report of {item.nodeid}", report.longreprtext)
    for name, content in report.sections:
        watch(f"{name} of {item.nodeid}", content)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _sightings:
        places = "; ".join(sorted(set(_sightings)))
        terminalreporter.write_line(f"FAILED: the canary secret leaked: {places}", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A pytest-xdist worker's exit status is not the run's: the worker hands its
    # sightings to the controller (sent after this hook), which reports and fails.
    handover: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if handover is not None:
        handover["canary_sightings"] = list(_sightings)
    if _sightings and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist, in the controller: a worker finished; take over its sightings."""
    output: dict[str, Any] = getattr(node, "workeroutput", None) or {}
    _sightings.extend(output.get("canary_sightings", ()))
