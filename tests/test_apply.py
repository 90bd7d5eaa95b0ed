"""`devmesh apply`: tool instances declared in the configuration file, as an operator uses it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from devmesh.app import create_app, open_services
from devmesh.cli import cli
from devmesh.config import load_settings
from devmesh.domain.models import ToolInstance
from devmesh.tools.declared import DeclaredTools
from devmesh.tools.models import ToolCreate, ToolUpdate
from tests.standins.gitlab.fixture import GitLabStandin

TOKEN = "glpat-declared-secret-0001"
HOOK_SECRET = "hook-secret-never-printed-0001"

Apply = Callable[..., Result]

GITLAB = """
tenant: acme
adapters:
  ci:
    gitlab:
      provider: gitlab
      url: ${GITLAB_URL:-https://gitlab.example.com}
      token: ${GITLAB_TOKEN}
      timeout: 30s
      max_retries: 2
      circuit_breaker: {max_failures: 5, timeout: 60s}
      rate_limit: {requests_per_second: 10, burst: 20}
      webhook:
        secret: ${WEBHOOK_SECRET}
        allowed_events: [build.completed, build.failed]
    nightly:
      provider: buildbot
      url: http://buildbot.example.com:8010
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def run(tmp_path: Path, data_dir: Path) -> Apply:
    def _run(*args: str, env: dict[str, str] | None = None) -> Result:
        environment = {
            "DEVMESH_DATA_DIR": str(data_dir),
            "GITLAB_TOKEN": TOKEN,
            "WEBHOOK_SECRET": HOOK_SECRET,
            **(env or {}),
        }
        return CliRunner().invoke(cli, list(args), obj={}, env=environment)

    return _run


@pytest.fixture
def config(tmp_path: Path) -> Callable[[str], str]:
    def _write(text: str) -> str:
        path = tmp_path / "declared.yaml"
        path.write_text(text)
        return str(path)

    return _write


@pytest.fixture
def acme(run: Apply) -> None:
    assert run("tenants", "create", "acme").exit_code == 0


def plan_lines(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [line.strip() for line in result.stdout.splitlines()]


def tools_of(data_dir: Path, tenant: str = "acme") -> dict[str, ToolInstance]:
    async def listed() -> dict[str, ToolInstance]:
        async with open_services(load_settings(environ={"DEVMESH_DATA_DIR": str(data_dir)})) as s:
            owner = await s.tenants.get_tenant(tenant)
            return {tool.name: tool for tool in await s.tools.list_tools(owner)}

    return asyncio.run(listed())


def test_apply_creates_the_declared_tools_then_finds_them_unchanged(
    run: Apply, config: Callable[[str], str], acme: None
) -> None:
    path = config(GITLAB)
    assert plan_lines(run("apply", "-f", path)) == [
        "create    acme/gitlab (gitlab)",
        "create    acme/nightly (buildbot)",
        "applied",
    ]
    assert plan_lines(run("apply", "-f", path)) == [
        "unchanged acme/gitlab",
        "unchanged acme/nightly",
    ]


def test_the_declared_settings_reach_the_tools(
    run: Apply, config: Callable[[str], str], acme: None, data_dir: Path
) -> None:
    run("apply", "-f", config(GITLAB))
    tools = tools_of(data_dir)
    gitlab = tools["gitlab"]
    assert (gitlab.base_url, gitlab.managed_by, gitlab.has_credentials) == (
        "https://gitlab.example.com",
        "config",
        True,
    )
    assert gitlab.resilience == {
        "deadline": 30.0,
        "max_retries": 2,
        "max_failures": 5,
        "reset_timeout": 60.0,
        "requests_per_second": 10.0,
        "burst": 20,
    }
    assert tools["nightly"].has_credentials is False


def test_an_edited_rate_limit_is_an_update_of_the_resilience_only(
    run: Apply, config: Callable[[str], str], acme: None, data_dir: Path
) -> None:
    run("apply", "-f", config(GITLAB))
    edited = config(GITLAB.replace("burst: 20", "burst: 40"))
    assert plan_lines(run("apply", "-f", edited)) == [
        "update    acme/gitlab: resilience",
        "unchanged acme/nightly",
        "applied",
    ]
    assert tools_of(data_dir)["gitlab"].resilience["burst"] == 40
    assert plan_lines(run("apply", "-f", edited))[0] == "unchanged acme/gitlab"


def test_a_new_token_or_webhook_secret_is_an_update_that_names_no_value(
    run: Apply, config: Callable[[str], str], acme: None
) -> None:
    path = config(GITLAB)
    run("apply", "-f", path)
    result = run(
        "apply", "-f", path, env={"GITLAB_TOKEN": "glpat-rotated-0002", "WEBHOOK_SECRET": "x" * 20}
    )
    assert plan_lines(result)[0] == "update    acme/gitlab: credentials, webhook.secret"
    assert "glpat-rotated-0002" not in result.output
    assert plan_lines(run("apply", "-f", path))[0] == (
        "update    acme/gitlab: credentials, webhook.secret"
    )


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    run: Apply, config: Callable[[str], str], acme: None, data_dir: Path
) -> None:
    assert plan_lines(run("apply", "--dry-run", "-f", config(GITLAB))) == [
        "create    acme/gitlab (gitlab)",
        "create    acme/nightly (buildbot)",
        "dry run: nothing changed",
    ]
    assert tools_of(data_dir) == {}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("burst: 20", "burst: 0"), "adapters.ci.gitlab.rate_limit.burst: must be ≥ 1"),
        (("burst: 20", "burst: 5"), "adapters.ci.gitlab.rate_limit.burst: must be at least"),
        (("provider: buildbot", "provider: bamboo"), "adapters.ci.nightly.provider: unknown"),
        (("max_retries: 2", "max_retry: 2"), "adapters.ci.gitlab.max_retry: unknown setting"),
        (("timeout: 30s", "timeout: soon"), "adapters.ci.gitlab.timeout: must be seconds"),
        (("url: http://buildbot", "url: ftp://buildbot"), "adapters.ci.nightly.url: URL scheme"),
        (("    nightly:", "    9lives:"), "adapters.ci.9lives: String should match pattern"),
        (("tenant: acme\n", ""), "adapters.ci.gitlab.tenant: no tenant owns this tool"),
        (("webhook:\n", "webhook:\n        scheme: standard\n"), "webhook.secret: a Standard"),
    ],
)
def test_an_invalid_file_is_refused_naming_the_key_and_changes_nothing(
    run: Apply,
    config: Callable[[str], str],
    acme: None,
    data_dir: Path,
    edit: tuple[str, str],
    message: str,
) -> None:
    run("apply", "-f", config(GITLAB))
    before = tools_of(data_dir)
    # A valid change beside the bad one: it must not be made either.
    broken = GITLAB.replace(*edit).replace("max_failures: 5", "max_failures: 6")
    result = run("apply", "-f", config(broken))
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert tools_of(data_dir) == before


def test_an_unset_variable_is_an_error_naming_it_and_its_key(
    run: Apply, config: Callable[[str], str], acme: None, data_dir: Path
) -> None:
    result = run("apply", "-f", config(GITLAB), env={"GITLAB_TOKEN": ""})
    assert result.exit_code == 1
    assert "adapters.ci.gitlab.token: config file references ${GITLAB_TOKEN}" in result.stderr
    assert tools_of(data_dir) == {}


def test_an_unknown_provider_under_events_handlers_is_named(
    run: Apply, config: Callable[[str], str], acme: None
) -> None:
    text = GITLAB + "events:\n  handlers:\n    bamboo: {enabled: true, workers: 5}\n"
    result = run("apply", "-f", config(text))
    assert result.exit_code == 1
    assert "events.handlers.bamboo: unknown provider 'bamboo'" in result.stderr


def test_secrets_never_reach_the_output_or_the_logs(
    run: Apply, config: Callable[[str], str], acme: None
) -> None:
    path = config(GITLAB)
    debug = {"DEVMESH_LOGGING__LEVEL": "debug"}
    outputs = [
        run("apply", "-f", path, env=debug),
        run("apply", "-f", path, env=debug | {"GITLAB_TOKEN": "glpat-second-secret-3"}),
        run("apply", "--dry-run", "-f", path, env=debug),
        run("apply", "-f", config(GITLAB.replace("burst: 20", "burst: 0")), env=debug),
    ]
    assert "declared_tool_applied" in outputs[0].stderr  # the logs are captured here
    for result in outputs:
        for secret in (TOKEN, HOOK_SECRET, "glpat-second-secret-3"):
            assert secret not in result.stdout
            assert secret not in result.stderr


def test_a_missing_tenant_is_refused_with_how_to_create_it(
    run: Apply, config: Callable[[str], str]
) -> None:
    result = run("apply", "-f", config(GITLAB))
    assert result.exit_code == 1
    assert "tenant: no tenant 'acme'. Create it with `devmesh tenants create acme`" in (
        result.stderr
    )


def test_create_tenant_makes_the_tenant_without_a_usable_key(
    run: Apply, config: Callable[[str], str], data_dir: Path
) -> None:
    lines = plan_lines(run("apply", "--create-tenant", "-f", config(GITLAB)))
    assert lines[0].startswith("create    tenant acme (it gets no API key here")
    assert set(tools_of(data_dir)) == {"gitlab", "nightly"}
    keys = json.loads(run("keys", "list", "acme").stdout)
    assert all(key["revoked_at"] is not None for key in keys)


def test_a_tool_made_through_the_api_is_never_taken_over(
    run: Apply, config: Callable[[str], str], acme: None, data_dir: Path
) -> None:
    asyncio.run(register(data_dir, "nightly"))
    result = run("apply", "-f", config(GITLAB))
    assert result.exit_code == 1
    assert "adapters.ci.nightly: tenant 'acme' has a tool 'nightly' made through the API" in (
        result.stderr
    )
    assert set(tools_of(data_dir)) == {"nightly"}


def test_tools_left_out_of_the_file_are_kept_unless_pruned_and_api_tools_never(
    run: Apply, config: Callable[[str], str], acme: None, data_dir: Path
) -> None:
    run("apply", "-f", config(GITLAB))
    asyncio.run(register(data_dir, "by-api"))
    only_gitlab = config(GITLAB.split("    nightly:")[0])
    assert plan_lines(run("apply", "-f", only_gitlab)) == [
        "unchanged acme/gitlab",
        "kept      acme/nightly: no longer in the file (--prune deletes it)",
    ]
    assert plan_lines(run("apply", "--prune", "-f", only_gitlab)) == [
        "unchanged acme/gitlab",
        "delete    acme/nightly: no longer in the file",
        "applied",
    ]
    assert set(tools_of(data_dir)) == {"gitlab", "by-api"}


async def register(data_dir: Path, name: str) -> None:
    async with open_services(load_settings(environ={"DEVMESH_DATA_DIR": str(data_dir)})) as s:
        tenant = await s.tenants.get_tenant("acme")
        spec = ToolCreate(name=name, provider="buildbot", base_url="http://bb.example.com:8010")
        await s.tools.register_tool(tenant, spec)


@pytest.mark.anyio
async def test_a_declared_gitlab_tool_calls_the_gitlab_api(
    tmp_path: Path, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(token=TOKEN)
    path = tmp_path / "declared.yaml"
    path.write_text(GITLAB.split("    nightly:")[0])
    settings = load_settings(
        path,
        environ={
            "DEVMESH_DATA_DIR": str(tmp_path / "data"),
            "GITLAB_URL": gitlab_standin.base_url,
            "GITLAB_TOKEN": TOKEN,
            "WEBHOOK_SECRET": HOOK_SECRET,
        },
    )
    async with open_services(settings) as services:
        tenant, _ = await services.tenants.create_tenant("acme")
        declared = DeclaredTools(
            tools=services.tools,
            webhooks=services.webhooks,
            tenants=services.tenants,
            registry=services.registry,
        )
        await declared.apply(await declared.plan(settings))
        build = await services.tools.execute(
            tenant, "gitlab", "trigger_build", {"project": "group/app", "branch": "main"}
        )
        status = await services.tools.execute(
            tenant, "gitlab", "get_build_status", {"build_id": build["id"]}
        )
    assert status["id"] == build["id"]


def test_the_api_shows_which_tools_the_file_manages(
    run: Apply, config: Callable[[str], str], data_dir: Path
) -> None:
    created = json.loads(run("tenants", "create", "acme").stdout)
    run("apply", "-f", config(GITLAB))
    asyncio.run(register(data_dir, "by-api"))
    app = create_app(load_settings(environ={"DEVMESH_DATA_DIR": str(data_dir)}))
    with TestClient(app) as client:
        listed = client.get(
            "/api/v1/tools", headers={"Authorization": f"Bearer {created['api_key']}"}
        ).json()
    assert {tool["name"]: tool["managed_by"] for tool in listed} == {
        "by-api": None,
        "gitlab": "config",
        "nightly": "config",
    }


def test_an_api_change_to_a_managed_tool_keeps_the_mark_and_is_undone_by_the_next_apply(
    run: Apply, config: Callable[[str], str], acme: None, data_dir: Path
) -> None:
    path = config(GITLAB)
    run("apply", "-f", path)

    async def patch() -> None:
        async with open_services(load_settings(environ={"DEVMESH_DATA_DIR": str(data_dir)})) as s:
            tenant = await s.tenants.get_tenant("acme")
            await s.tools.update_tool(tenant, "gitlab", ToolUpdate(config={"max_log_lines": 200}))

    asyncio.run(patch())
    assert tools_of(data_dir)["gitlab"].managed_by == "config"
    assert plan_lines(run("apply", "-f", path))[0] == "update    acme/gitlab: config"
    assert tools_of(data_dir)["gitlab"].config == {}


@pytest.mark.anyio
async def test_a_plan_overtaken_by_another_apply_of_the_same_file_still_applies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "declared.yaml"
    path.write_text(GITLAB)
    settings = load_settings(
        path,
        environ={
            "DEVMESH_DATA_DIR": str(tmp_path / "data"),
            "GITLAB_TOKEN": TOKEN,
            "WEBHOOK_SECRET": HOOK_SECRET,
        },
    )
    async with open_services(settings) as services:
        await services.tenants.create_tenant("acme")
        declared = DeclaredTools(
            tools=services.tools,
            webhooks=services.webhooks,
            tenants=services.tenants,
            registry=services.registry,
        )
        stale = await declared.plan(settings)
        await declared.apply(await declared.plan(settings))
        await declared.apply(stale)
        again = await declared.plan(settings)
    assert [change.action for change in again.changes] == ["unchanged", "unchanged"]
