"""docker-compose.yml and the Dockerfile name only what the code has.

No container engine runs here, so this reads the files: every command a service
runs is a `devmesh` command with options it takes, every DEVMESH_* variable is a
setting the service loads, the published port is the one it listens on, the health
check asks a route the app serves, and the start order is gated on health.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import yaml

from devmesh.app import create_app
from devmesh.cli import cli
from devmesh.config import Settings, load_settings

REPO = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text()
OURS = [name for name, service in SERVICES.items() if service.get("image") == "devmesh:latest"]
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?+][^}]*)?\}")


def _dockerfile_env() -> dict[str, str]:
    text = DOCKERFILE.replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line.removeprefix("ENV ")):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def _interpolated(value: str) -> str:
    return _INTERPOLATION.sub(lambda m: f"x-{m.group(1).lower()}", value)


def _resolve(words: list[str]) -> click.Command:
    """The click command ``devmesh WORDS...`` runs, failing on an unknown word or option."""
    command: click.Command = cli
    context = click.Context(cli)
    takes_value = False
    for word in words:
        if takes_value:
            takes_value = False
            continue
        if word.startswith("-"):
            options = {opt: param for param in command.params for opt in param.opts}
            name = word.split("=")[0]
            assert name in options, f"devmesh {' '.join(words)}: no {word}"
            option = options[name]
            takes_value = "=" not in word and not getattr(option, "is_flag", False)
            if takes_value:
                # Converted as click would, so a bad value fails here too.
                option.type.convert(words[words.index(word) + 1], option, context)
            continue
        assert isinstance(command, click.Group), f"devmesh {' '.join(words)}: extra {word!r}"
        found = command.get_command(context, word)
        assert found is not None, f"devmesh {' '.join(words)}: no command {word!r}"
        command = found
    assert not isinstance(command, click.Group), f"devmesh {' '.join(words)} is a group"
    return command


def test_the_stack_has_the_service_workers_a_one_shot_migration_and_the_backends() -> None:
    assert {"postgres", "redis", "migrate", "devmesh", "worker"} <= set(SERVICES)
    assert SERVICES["worker"]["deploy"]["replicas"] >= 1
    assert "pgvector" in SERVICES["postgres"]["image"]


@pytest.mark.parametrize("name", OURS)
def test_every_service_runs_a_devmesh_command_that_exists(name: str) -> None:
    _resolve(SERVICES[name]["command"])


def test_the_image_runs_devmesh_and_defaults_to_serve() -> None:
    assert 'ENTRYPOINT ["devmesh"]' in DOCKERFILE
    assert 'CMD ["serve"]' in DOCKERFILE
    # The three ways the one image is run (docs/deployment.md).
    for command in (["serve"], ["worker"], ["mcp"]):
        _resolve(command)


@pytest.mark.parametrize("name", OURS)
def test_every_devmesh_variable_is_a_setting_that_loads(name: str) -> None:
    env = {**_dockerfile_env(), **SERVICES[name]["environment"]}
    env = {key: _interpolated(str(value)) for key, value in env.items()}
    env["DEVMESH_ENCRYPTION_KEY"] = "A" * 43 + "="  # base64 of 32 bytes, for the check
    ours = [key for key in env if key.startswith("DEVMESH_")]
    for key in ours:
        top = key.removeprefix("DEVMESH_").lower().split("__")[0]
        assert top in Settings.model_fields, f"{key} is no setting"
    settings = load_settings(None, environ=env)
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.redis_url == "redis://redis:6379/0"
    assert str(settings.data_dir) == "/var/lib/devmesh"


def test_only_the_migrate_service_migrates_and_the_others_wait_for_it() -> None:
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"
    for name in OURS:
        migrates = SERVICES[name]["environment"]["DEVMESH_AUTO_MIGRATE"] == "true"
        assert migrates == (name == "migrate"), name
    for name in ("devmesh", "worker"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_dependency_waited_on_for_health_has_a_health_check() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            continue
        for target, condition in depends.items():
            if condition["condition"] != "service_healthy":
                continue
            check = SERVICES[target].get("healthcheck")
            has_own = check is not None and not check.get("disable", False)
            from_image = target in OURS and "HEALTHCHECK" in DOCKERFILE
            assert has_own or from_image, f"{name} waits for {target}, which has no health check"


def test_the_published_port_is_the_one_the_service_listens_on() -> None:
    port = int(_dockerfile_env()["DEVMESH_PORT"])
    assert SERVICES["devmesh"]["ports"] == [f"{port}:{port}"]
    assert f"EXPOSE {port}" in DOCKERFILE
    assert _dockerfile_env()["DEVMESH_HOST"] == "0.0.0.0"
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["devmesh"]["static_configs"] == [{"targets": [f"devmesh:{port}"]}]


def test_prometheus_scrapes_every_worker_on_the_port_it_serves_metrics_on() -> None:
    command = SERVICES["worker"]["command"]
    port = int(command[command.index("--metrics-port") + 1])
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (lookup,) = jobs["devmesh-workers"]["dns_sd_configs"]
    assert lookup == {"names": ["worker"], "type": "A", "port": port}


@pytest.mark.anyio
async def test_the_health_check_and_the_scrape_ask_routes_the_app_serves(tmp_path: Path) -> None:
    match = re.search(r"HEALTHCHECK .*?'(/[a-z]+)'", DOCKERFILE.replace("\\\n", " "))
    assert match is not None
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    app = create_app(Settings.model_validate({"data_dir": tmp_path}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client,
    ):
        assert (await client.get(match.group(1))).json() == {"status": "ok"}
        metrics = await client.get(scrape["scrape_configs"][0]["metrics_path"])
    assert "devmesh_http_requests_total" in metrics.text


def test_the_image_runs_as_a_non_root_user() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}


def test_the_image_installs_with_the_script_the_suite_runs() -> None:
    assert "RUN bash scripts/install-runtime /opt/devmesh" in DOCKERFILE
    ignored = (REPO / ".dockerignore").read_text().split()
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, flags=re.MULTILINE):
        for path in copied.split():
            assert (REPO / path).exists(), path
            assert f"!{path}" in ignored, f"{path} is not let in by .dockerignore"


def test_every_secret_the_compose_file_needs_is_in_the_env_example() -> None:
    needed = set(_INTERPOLATION.findall((REPO / "docker-compose.yml").read_text()))
    example = (REPO / "deploy" / "env.example").read_text()
    listed = {line.split("=")[0] for line in example.splitlines() if "=" in line[:60]}
    assert needed <= listed
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_the_mounted_monitoring_files_exist() -> None:
    for name in ("prometheus", "grafana"):
        for volume in SERVICES[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).is_dir(), source
