"""Session-wide fixtures: the real backends, and the rule that CI skips nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.backends import start_postgres, start_redis

pytest_plugins = ["tests.fixtures_app"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server with pgvector: DEVMESH_TEST_POSTGRES_URL, or one started here."""
    configured = os.environ.get("DEVMESH_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    with start_postgres() as server:
        yield server.url()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server: DEVMESH_TEST_REDIS_URL, or one started here."""
    configured = os.environ.get("DEVMESH_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with start_redis() as server:
        yield server.url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # A backend test that skips in CI would let a broken backend pass unseen.
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("CI") and skipped:
        names = ", ".join(report.nodeid for report in skipped)
        terminalreporter.write_line(f"FAILED: a skipped test in CI is a failure: {names}", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
