"""The servers tests borrow, per module (registered by the root conftest).

Per module, not per session: builds one module makes would otherwise show in
another's list_builds, and a module that breaks its master breaks only itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.buildbot import BuildbotServer, run_buildbot
from tests.support.live import LiveService, run_service
from tests.upstream import Upstream, run_upstream

__all__ = ["buildbot", "canned_upstream", "live", "upstream"]


@pytest.fixture(scope="module")
def buildbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildbotServer]:
    """A real Buildbot master and worker (``tests/support/buildbot/master.cfg``)."""
    with run_buildbot(tmp_path_factory.mktemp("buildbot")) as server:
        yield server


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    """The service on a loopback port, with its own SQLite file."""
    async with run_service(tmp_path_factory.mktemp("devmesh")) as service:
        yield service


@pytest.fixture(scope="module")
async def canned_upstream() -> AsyncIterator[Upstream]:
    """The canned Buildbot stand-in; one process per module (starting one takes ~0.5 s)."""
    async with run_upstream() as running:
        yield running


@pytest.fixture
async def upstream(canned_upstream: Upstream) -> Upstream:
    """The canned stand-in with no faults in force and its counts at zero."""
    await canned_upstream.clear()
    await canned_upstream.reset_stats()
    return canned_upstream
