"""``devmesh``: serve, migrate, and manage tenants and keys.

Every command loads settings once and wires through ``devmesh.app``. Errors a user
can fix are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog
import uvicorn
from prometheus_client import start_http_server

from devmesh.app import Services, create_app, migrate, open_services
from devmesh.config import ConfigError, Settings, load_settings
from devmesh.domain.errors import DevMeshError
from devmesh.mcp.stdio import serve_stdio
from devmesh.observability.logging import configure_logging
from devmesh.serving import uvicorn_config
from devmesh.supervisor import background_in, default_workers, run_workers
from devmesh.tools.context_operations import knowledge_operations
from devmesh.tools.declared import DeclaredTools
from devmesh.tools.toolsets import View

__all__ = ["main"]

_log = structlog.get_logger(__name__)

T = TypeVar("T")


class _Group(click.Group):
    """Turns the errors a user can act on into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, DevMeshError) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings | None = ctx.obj.get("settings")
    if settings is None:
        settings = load_settings(ctx.obj["config"])
        configure_logging(settings.logging)
        ctx.obj["settings"] = settings
    return settings


def _run(ctx: click.Context, work: Callable[[Services], Coroutine[Any, Any, T]]) -> T:
    settings = _settings(ctx)

    async def _main() -> T:
        async with open_services(settings) as services:
            return await work(services)

    return asyncio.run(_main())


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="DEVMESH_CONFIG",
    help="YAML config file (default: configs/config.yaml when present).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Developer Mesh: DevOps tools for AI agents, over MCP and REST."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises SIGTERM after a graceful shutdown, so the process would
        # die by the signal; a clean, drained shutdown should exit 0.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default from settings).")
@click.option("--port", type=int, default=None, help="Port to bind (default from settings).")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not run the event worker in this process (run `devmesh worker` instead).",
)
@click.option(
    "--apply",
    "apply_first",
    is_flag=True,
    help="First apply the tools the configuration declares (as `devmesh apply`).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes serving the port (default serve.workers, else one per CPU with Redis, "
    "else one).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    no_worker: bool,
    apply_first: bool,
    workers: int | None,
) -> None:
    """Run the HTTP service: REST API and MCP (and the event worker, unless told not to)."""
    settings = _settings(ctx)
    if apply_first:
        _apply(ctx, dry_run=False, prune=False, create_tenant=False)
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or default_workers(settings)
    if workers == 1:
        sys.exit(_serve_one(settings, host, port, run_worker=False if no_worker else None))
    if settings.redis_url is None:
        # Allowed (and measured, docs/performance.md), but not what replicas share.
        _log.warning(
            "workers_without_redis",
            workers=workers,
            detail="each process keeps its own rate-limit windows and circuit breakers",
        )
    if settings.auto_migrate:
        # Once, before the children exist: each would migrate at start-up, and on a
        # fresh SQLite file two doing so at once fail (the same column added twice).
        asyncio.run(migrate(settings))
        settings = settings.model_copy(update={"auto_migrate": False})
    sock = uvicorn_config(None, settings, host=host, port=port).bind_socket()

    def serve_child(index: int) -> int:
        background = not no_worker and background_in(settings, index)
        return _serve_one(settings, host, port, run_worker=None if background else False, sock=sock)

    sys.exit(run_workers(settings, sock, workers, serve_child))


def _serve_one(
    settings: Settings,
    host: str,
    port: int,
    *,
    run_worker: bool | None,
    sock: socket.socket | None = None,
) -> int:
    app = create_app(settings, run_worker=run_worker)
    server = _Server(uvicorn_config(app, settings, host=host, port=port))
    server.run(sockets=None if sock is None else [sock])
    return 0 if server.started else 1


@cli.command("mcp")
@click.option(
    "--api-key",
    envvar="DEVMESH_API_KEY",
    required=True,
    help="The tenant's API key (or DEVMESH_API_KEY).",
)
@click.option(
    "--upstream-token",
    envvar="DEVMESH_UPSTREAM_TOKEN",
    default=None,
    help="Your own token for the tools, instead of stored credentials.",
)
@click.option(
    "--read-only",
    is_flag=True,
    help="List and run only read-only operations (a read-only key is so anyway).",
)
@click.pass_context
def mcp_stdio(
    ctx: click.Context, api_key: str, upstream_token: str | None, read_only: bool
) -> None:
    """Serve MCP on stdin/stdout for the tenant the API key names.

    It lists the toolsets of DEVMESH_TOOLSETS (setting ``toolsets``), or only the
    search meta-tools with DEVMESH_MCP_MODE=search."""

    async def work(services: Services) -> None:
        caller = await services.tenants.identify(api_key)
        settings = services.settings
        await serve_stdio(
            services.tools,
            caller.tenant,
            upstream_token=upstream_token,
            separator=settings.tool_name_separator,
            tenant_operations=knowledge_operations(services.contexts, services.learning),
            view=View(
                # Set for this process (DEVMESH_TOOLSETS): its choice, as ?toolsets= is
                # a connection's; unset: the defaults, with the search meta-tools.
                toolsets=frozenset(settings.toolsets)
                if "toolsets" in settings.model_fields_set
                else None,
                search=settings.mcp_mode == "search",
                read_only=caller.read_only or read_only,
            ),
            default_toolsets=frozenset(settings.toolsets),
        )

    _run(ctx, work)


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration."""
    settings = _settings(ctx).model_copy(update={"auto_migrate": False})
    ctx.obj["settings"] = settings

    async def work(services: Services) -> str | None:
        await services.db.upgrade()
        return await services.db.current_revision()

    click.echo(f"database at revision {_run(ctx, work)}")


@cli.group()
def tenants() -> None:
    """Create and list tenants."""


@tenants.command("create")
@click.argument("name")
@click.pass_context
def tenants_create(ctx: click.Context, name: str) -> None:
    """Create tenant NAME and print its first API key (shown only once)."""

    async def work(services: Services) -> dict[str, str]:
        tenant, key = await services.tenants.create_tenant(name)
        return {"tenant_id": tenant.id, "name": tenant.name, "api_key": key}

    _print_json(_run(ctx, work))


@tenants.command("list")
@click.pass_context
def tenants_list(ctx: click.Context) -> None:
    """List tenants as JSON."""

    async def work(services: Services) -> list[dict[str, Any]]:
        return [t.model_dump(mode="json") for t in await services.tenants.list_tenants()]

    _print_json(_run(ctx, work))


@cli.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.argument("tenant")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@click.option(
    "--read-only",
    is_flag=True,
    help="The key lists and runs only read-only operations and changes nothing.",
)
@click.pass_context
def keys_create(ctx: click.Context, tenant: str, name: str, read_only: bool) -> None:
    """Create an API key for TENANT (id or name); the key is shown only once."""

    async def work(services: Services) -> dict[str, str | bool]:
        key, plaintext = await services.tenants.create_key(tenant, name=name, read_only=read_only)
        return {
            "key_id": key.id,
            "tenant_id": key.tenant_id,
            "name": key.name,
            "read_only": key.read_only,
            "api_key": plaintext,
        }

    _print_json(_run(ctx, work))


@keys.command("list")
@click.argument("tenant")
@click.pass_context
def keys_list(ctx: click.Context, tenant: str) -> None:
    """List TENANT's keys (never their secrets)."""

    async def work(services: Services) -> list[dict[str, Any]]:
        return [k.model_dump(mode="json") for k in await services.tenants.list_keys(tenant)]

    _print_json(_run(ctx, work))


@keys.command("revoke")
@click.argument("key")
@click.pass_context
def keys_revoke(ctx: click.Context, key: str) -> None:
    """Revoke KEY, given by its key id or its prefix (the part after 'dmk_')."""

    async def work(services: Services) -> dict[str, Any]:
        return (await services.tenants.revoke_key(key)).model_dump(mode="json")

    _print_json(_run(ctx, work))


@cli.command("apply")
@click.option(
    "-f",
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The configuration file to apply (default: the one --config names).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan only; change nothing.")
@click.option(
    "--prune", is_flag=True, help="Delete tools an earlier apply made that the file no longer has."
)
@click.option(
    "--create-tenant",
    is_flag=True,
    help="Create a missing tenant (without an API key: `devmesh keys create` makes one).",
)
@click.pass_context
def apply(
    ctx: click.Context, file: Path | None, dry_run: bool, prune: bool, create_tenant: bool
) -> None:
    """Create or update the tool instances the file declares (adapters.ci.<name>).

    Prints the plan (create / update / unchanged), never a secret. An invalid file
    is refused, naming the key, before anything changes."""
    if file is not None:
        ctx.obj["config"] = file
    _apply(ctx, dry_run=dry_run, prune=prune, create_tenant=create_tenant)


def _apply(ctx: click.Context, *, dry_run: bool, prune: bool, create_tenant: bool) -> None:
    async def work(services: Services) -> None:
        declared = DeclaredTools(
            tools=services.tools,
            webhooks=services.webhooks,
            tenants=services.tenants,
            registry=services.registry,
        )
        plan = await declared.plan(services.settings, create_tenants=create_tenant, prune=prune)
        for line in plan.lines() or ["nothing declared (adapters.ci is empty)"]:
            click.echo(line)
        if dry_run:
            click.echo("dry run: nothing changed")
        elif plan.changes_anything:
            await declared.apply(plan)
            click.echo("applied")

    _run(ctx, work)


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the configuration; name the bad key if there is one."""
    settings = _settings(ctx)
    database = "configured" if settings.database_url else f"sqlite in {settings.data_dir}"
    bus = "redis" if settings.redis_url else "in-process"
    click.echo(f"configuration ok (database: {database}, bus: {bus})")


@cli.command("worker")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Also serve this worker's Prometheus metrics on http://HOST:PORT/metrics "
    "(HOST is the host setting).",
)
@click.pass_context
def worker(ctx: click.Context, metrics_port: int | None) -> None:
    """Run the event worker until SIGTERM or Ctrl-C: dispatch, deliver, retry.

    Any number may run: on PostgreSQL they share the queue table, with Redis the
    stream's consumer group. On SIGTERM a worker finishes the deliveries it claimed
    and then exits 0, leaving none pending."""

    async def work(services: Services) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        with _metrics_endpoint(services, metrics_port):
            # The build watcher, the notifier and retention run where the worker runs
            # (docs/events.md).
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(services.notifier.run(stop))
                tasks.create_task(services.pruner.run(stop))
                if services.settings.events.watcher.enabled:
                    tasks.create_task(services.watcher.run(stop))
                await services.worker.run(stop)

    _run(ctx, work)


@contextlib.contextmanager
def _metrics_endpoint(services: Services, port: int | None) -> Generator[None, None, None]:
    # A worker serves no HTTP otherwise; without this its counters (events handled,
    # handler time) would never reach Prometheus. prometheus_client's own small
    # server, on a thread: scrapes never wait on the worker's event loop.
    if port is None:
        yield
        return
    host = services.settings.host
    try:
        server, thread = start_http_server(port, addr=host, registry=services.metrics.registry)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@cli.group()
def events() -> None:
    """Inspect events and the dead-letter queue (every tenant's, unless --tenant)."""


@events.command("list")
@click.option("--tenant", default=None, help="Only this tenant's (id).")
@click.option("--type", "type_", default=None, help="Only this type, e.g. build.failed.")
@click.option("--tool", default=None, help="Only this tool (name or id).")
@click.option("--subject", default=None, help="Only about this build or pipeline run.")
@click.option("--cursor", default=None, help="The next_cursor of a previous page.")
@click.option("--limit", type=click.IntRange(1, 500), default=100)
@click.pass_context
def events_list(
    ctx: click.Context,
    tenant: str | None,
    type_: str | None,
    tool: str | None,
    subject: str | None,
    cursor: str | None,
    limit: int,
) -> None:
    """Events, oldest first, as JSON."""

    async def work(services: Services) -> dict[str, Any]:
        page = await services.events.list(
            tenant_id=tenant, type=type_, tool=tool, subject=subject, cursor=cursor, limit=limit
        )
        return {
            "events": [event.model_dump(mode="json") for event in page.events],
            "next_cursor": page.next_cursor,
        }

    _print_json(_run(ctx, work))


@events.command("show")
@click.argument("event_id")
@click.pass_context
def events_show(ctx: click.Context, event_id: str) -> None:
    """One event, as JSON."""

    async def work(services: Services) -> dict[str, Any]:
        return (await services.events.get(event_id, tenant_id=None)).model_dump(mode="json")

    _print_json(_run(ctx, work))


@events.command("dlq")
@click.option("--tenant", default=None, help="Only this tenant's (id).")
@click.option("--limit", type=click.IntRange(1, 500), default=100)
@click.pass_context
def events_dlq(ctx: click.Context, tenant: str | None, limit: int) -> None:
    """Dead letters, newest first: deliveries whose handler failed every attempt."""

    async def work(services: Services) -> list[dict[str, Any]]:
        letters = await services.bus.dead_letters(tenant_id=tenant, limit=limit)
        return [dataclasses.asdict(letter) for letter in letters]

    _print_json(_run(ctx, work))


@events.command("replay")
@click.argument("dead_letter_id")
@click.pass_context
def events_replay(ctx: click.Context, dead_letter_id: str) -> None:
    """Deliver a dead letter again, with a fresh attempt count."""

    async def work(services: Services) -> dict[str, Any]:
        letter = await services.bus.replay(dead_letter_id, tenant_id=None)
        return dataclasses.asdict(letter)

    _print_json(_run(ctx, work))


def main() -> None:
    cli(obj={})
