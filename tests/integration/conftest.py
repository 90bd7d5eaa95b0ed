"""What integration tests share: a real Buildbot and the running service, per module.

Per module, not per session: builds one module makes would otherwise show in
another's list_builds, and a module that breaks its master breaks only itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.integration.buildbot.fixture import BuildbotServer, run_buildbot
from tests.integration.live import LiveService, run_service


@pytest.fixture(scope="module")
def buildbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildbotServer]:
    with run_buildbot(tmp_path_factory.mktemp("buildbot")) as server:
        yield server


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    async with run_service(tmp_path_factory.mktemp("devmesh")) as service:
        yield service
