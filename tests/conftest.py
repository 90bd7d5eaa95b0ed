"""Session-wide fixtures: the real backends, and the rule that CI skips nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.backends import start_postgres, start_redis

pytest_plugins = [
    "pytester",
    "tests.support.canary",
    "tests.support.app",
    "tests.support.fixtures",
    "tests.standins.gitlab.fixture",
]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # The application runs on asyncio only; trio would double the run for nothing.
    return "asyncio"


# --- Real backends -----------------------------------------------------------------
# Session-scoped: one server each for the whole run (PostgreSQL takes ~0.7 s to
# start). A URL from the environment wins, so a developer or CI can point the
# suite at servers of their own and no process is started.


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server with pgvector: DEVMESH_TEST_POSTGRES_URL, or one started here."""
    configured = os.environ.get("DEVMESH_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    with start_postgres() as server:
        yield server.sqlalchemy_url()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server: DEVMESH_TEST_REDIS_URL, or one started here."""
    configured = os.environ.get("DEVMESH_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with start_redis() as server:
        yield server.url


# --- The longest modules first ----------------------------------------------------------
# scripts/test runs two pytest-xdist workers handing out whole modules in collection order
# (--dist loadfile --no-loadscope-reorder). A module that takes minutes, started last,
# would leave one worker idle while the other finishes it; started first, it runs beside
# all the rest. Measured: the event crash test is about a third of the whole suite.
RUN_FIRST = (
    "tests/integration/test_event_crash.py",
    "tests/deploy/test_graceful_shutdown.py",
    "tests/deploy/test_install_runtime.py",
)


@pytest.hookimpl(trylast=True)  # after pytest's own grouping by fixture, which it keeps
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)  # stable: every module keeps its own order


# --- CI skips nothing ---------------------------------------------------------------
# A test that skips because its backend is missing would let CI go green while
# testing less; in CI (the CI variable set) any skip fails the session.


def _skipped_in_ci(config: pytest.Config) -> list[str]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not os.environ.get("CI") or reporter is None:
        return []
    return [report.nodeid for report in reporter.stats.get("skipped", [])]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if skipped := _skipped_in_ci(terminalreporter.config):
        terminalreporter.write_line(
            f"FAILED: a skipped test in CI is a failure: {', '.join(skipped)}", red=True
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only turn success (or "no tests ran", when a whole module skipped) into
    # failure; an interrupted or already failing run keeps its own status.
    ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if exitstatus in ok and _skipped_in_ci(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
