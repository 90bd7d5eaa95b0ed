"""The guide's programs against a real Buildbot master registered as a tool named
``gitlab``: the same names and fields, whatever CI answers.

The builder ``runtests`` takes no branch and knows the parameters ``fail`` and
``sleep`` only (tests/support/buildbot/master.cfg), so the runs pass an empty branch
and those parameters. As in test_examples_gitlab.py, the failure run is checked up to
the logs until the knowledge store's search route exists.
"""

from __future__ import annotations

import re

import pytest

from tests.client.examples import run_example
from tests.client.support import api_url, buildbot_named_gitlab
from tests.support.buildbot import BuildbotServer
from tests.support.live import LiveService

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_the_integration_example_follows_a_passing_buildbot_build(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await buildbot_named_gitlab(live, buildbot)
    run = await run_example(
        "gitlab_integration.py", "runtests", "", "{}", url=api_url(live), api_key=key
    )
    assert run.returncode == 0, run.stderr
    assert re.search(r"^Build triggered: br-\d+$", run.stdout, re.M)
    assert f"URL: {buildbot.base_url}" in run.stdout
    assert "Build completed with status: succeeded" in run.stdout
    assert re.search(r"^Duration: \d+\.\d+$", run.stdout, re.M)


async def test_the_integration_example_prints_a_failed_buildbot_builds_logs(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await buildbot_named_gitlab(live, buildbot)
    run = await run_example(
        "gitlab_integration.py", "runtests", "", '{"fail": true}', url=api_url(live), api_key=key
    )
    assert "Status: failed" in run.stdout
    logs = run.stdout.split("Build failed. Last 500 lines of logs:\n", 1)[1]
    assert "ERROR: test_login failed: AssertionError: expected 200, got 500" in logs


async def test_the_assistant_lists_failed_buildbot_builds_with_the_failed_step(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await buildbot_named_gitlab(live, buildbot)
    await run_example(
        "gitlab_integration.py", "runtests", "", '{"fail": true}', url=api_url(live), api_key=key
    )
    run = await run_example(
        "devops_assistant.py", "show failed builds for runtests", url=api_url(live), api_key=key
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Recent failed builds:\n")
    assert re.search(r"\n- \d+: failure\n  Failed at: test\n", run.stdout)
