"""The `devmesh` command as an operator uses it."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from devmesh.cli import cli
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from tests.events.support import an_event, publish


def last_line(text: str) -> str:
    # Log lines (JSON) may come before the message on stderr.
    return text.strip().splitlines()[-1]


Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    def _run(*args: str, env: dict[str, str] | None = None) -> Result:
        environment = {"DEVMESH_DATA_DIR": str(tmp_path / "data"), **(env or {})}
        return CliRunner().invoke(cli, list(args), obj={}, env=environment)

    return _run


def test_tenants_create_prints_the_tenant_and_its_key_as_json(run: Run) -> None:
    result = run("tenants", "create", "acme")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert set(created) == {"tenant_id", "name", "api_key"}
    assert created["name"] == "acme"
    assert created["api_key"].startswith("dmk_")


def test_tenants_list_shows_what_was_created_in_the_same_data_dir(run: Run) -> None:
    run("tenants", "create", "acme")
    run("tenants", "create", "globex")
    listed = json.loads(run("tenants", "list").stdout)
    assert [t["name"] for t in listed] == ["acme", "globex"]
    assert all("api_key" not in t for t in listed)


def test_a_duplicate_tenant_is_a_one_line_error(run: Run) -> None:
    run("tenants", "create", "acme")
    result = run("tenants", "create", "acme")
    assert result.exit_code == 1
    assert last_line(result.stderr) == "error: tenant 'acme' exists already"


def test_keys_create_and_revoke(run: Run) -> None:
    run("tenants", "create", "acme")
    created = json.loads(run("keys", "create", "acme", "--name", "ci").stdout)
    revoked = json.loads(run("keys", "revoke", created["key_id"]).stdout)
    assert revoked["revoked_at"] is not None
    names = {k["name"]: k["revoked_at"] for k in json.loads(run("keys", "list", "acme").stdout)}
    assert names["default"] is None
    assert names["ci"] is not None


def test_keys_for_an_unknown_tenant_is_a_one_line_error(run: Run) -> None:
    result = run("keys", "create", "nobody")
    assert result.exit_code == 1
    assert last_line(result.stderr) == "error: no tenant 'nobody'"


def test_config_check_accepts_the_default(run: Run) -> None:
    result = run("config", "check")
    assert result.exit_code == 0
    assert "configuration ok" in result.stdout


def test_config_check_names_the_bad_key(run: Run) -> None:
    result = run("config", "check", env={"DEVMESH_PORT": "eighty"})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid configuration: port:")
    assert "Traceback" not in result.output


def test_db_upgrade_reports_the_head_revision(run: Run) -> None:
    result = run("db", "upgrade")
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("database at revision 0")


@pytest.mark.parametrize(
    "args", [["tenants"], ["tenants", "create"], ["nonsense"], ["serve", "--port", "x"]]
)
def test_bad_usage_exits_non_zero_without_a_traceback(run: Run, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["db", "upgrade"],
        ["tenants", "create"],
        ["keys", "revoke"],
        ["config", "check"],
    ],
)
def test_every_command_has_help(run: Run, command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_events_list_show_and_dlq_print_json_for_the_operator(run: Run, tmp_path: Path) -> None:
    assert run("db", "upgrade").exit_code == 0

    async def seed() -> str:
        db = Database(f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'devmesh.db').resolve()}")
        try:
            tenant, _ = await TenantService(db).create_tenant("acme")
            event = an_event(tenant.id)
            await publish(db, [event])
            return event.id
        finally:
            await db.close()

    event_id = asyncio.run(seed())
    listed = json.loads(run("events", "list", "--type", "build.triggered").stdout)
    shown = json.loads(run("events", "show", event_id).stdout)
    dead = json.loads(run("events", "dlq").stdout)
    missing = run("events", "replay", "12345")

    assert [e["id"] for e in listed["events"]] == [event_id]
    assert shown["subject"] == "1"
    assert dead == []
    assert missing.exit_code == 1
    assert "no dead letter" in last_line(missing.stderr)


def test_keys_create_read_only_issues_a_key_that_lists_as_read_only(run: Run) -> None:
    run("tenants", "create", "acme")
    created = json.loads(run("keys", "create", "acme", "--name", "ro", "--read-only").stdout)
    listed = {k["name"]: k["read_only"] for k in json.loads(run("keys", "list", "acme").stdout)}
    assert created["read_only"] is True
    assert listed == {"default": False, "ro": True}
