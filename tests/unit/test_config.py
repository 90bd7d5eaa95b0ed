from pathlib import Path

import pytest

from devmesh.config import ConfigError, expand_env, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_env_references_expand_with_defaults() -> None:
    assert expand_env("${HOST:-127.0.0.1}:${PORT}", {"PORT": "9"}) == "127.0.0.1:9"


def test_an_unset_reference_without_default_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"\$\{MISSING\}"):
        expand_env("${MISSING}", {})


def test_yaml_values_are_expanded_but_comments_are_not(tmp_path: Path) -> None:
    path = write(tmp_path, "# uses ${NOT_SET}\nport: ${PORT:-9000}\n")
    assert load_settings(path, environ={}).port == 9000


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 9000\nlogging:\n  level: info\n")
    settings = load_settings(
        path, environ={"DEVMESH_PORT": "9100", "DEVMESH_LOGGING__LEVEL": "debug"}
    )
    assert (settings.port, settings.logging.level) == (9100, "debug")


def test_a_bad_value_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"port: .*integer"):
        load_settings(write(tmp_path, "port: eighty\n"), environ={})


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"prot: unknown setting"):
        load_settings(write(tmp_path, "prot: 1\n"), environ={})


def test_a_database_url_with_an_unknown_driver_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"database_url: must start with"):
        load_settings(environ={"DEVMESH_DATABASE_URL": "mysql://x"})


def test_other_devmesh_variables_are_left_to_their_readers() -> None:
    settings = load_settings(environ={"DEVMESH_API_KEY": "dmk_x", "DEVMESH_TEST_REDIS_URL": "x"})
    assert settings.redis_url is None


def test_the_embedded_default_keeps_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"DEVMESH_DATA_DIR": str(tmp_path)})
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path}/devmesh.db"


def test_a_plain_postgresql_url_gets_the_async_driver() -> None:
    settings = load_settings(environ={"DEVMESH_DATABASE_URL": "postgresql://u@h/db"})
    assert settings.resolved_database_url == "postgresql+asyncpg://u@h/db"


def test_a_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_the_shipped_config_file_is_valid() -> None:
    shipped = Path(__file__).parents[2] / "configs" / "config.yaml"
    assert load_settings(shipped, environ={}).port == 8081


@pytest.mark.parametrize(
    ("environ", "exporter", "service"),
    [
        ({}, "none", "devmesh"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "mesh-eu"}, "otlp", "mesh-eu"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, "none", "devmesh"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "DEVMESH_TRACING__EXPORTER": "console"},
            "console",
            "devmesh",
        ),
    ],
)
def test_tracing_follows_the_standard_otel_variables_unless_devmesh_says_otherwise(
    environ: dict[str, str], exporter: str, service: str
) -> None:
    tracing = load_settings(environ=environ).tracing
    assert (tracing.exporter, tracing.service_name) == (exporter, service)


def test_an_empty_variable_switches_an_optional_setting_off() -> None:
    settings = load_settings(environ={"DEVMESH_RATE_LIMIT__REQUESTS_PER_MINUTE": ""})
    assert settings.rate_limit.requests_per_minute is None


def test_egress_networks_come_comma_separated_from_the_environment_and_are_checked(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "config.yaml"
    empty.write_text("")
    settings = load_settings(
        empty, environ={"DEVMESH_EGRESS__ALLOW_NETWORKS": "10.20.0.0/16, fd12::/48"}
    )
    assert settings.egress.allow_networks == ["10.20.0.0/16", "fd12::/48"]
    with pytest.raises(ConfigError, match=r"egress\.deny_networks"):
        load_settings(empty, environ={"DEVMESH_EGRESS__DENY_NETWORKS": "not-a-network"})


def test_the_real_environment_is_ignored_when_environ_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEVMESH_REDIS_URL", "redis://from-the-shell:6379/0")
    monkeypatch.setenv("DEVMESH_PORT", "1")
    settings = load_settings(environ={})
    assert (settings.redis_url, settings.port) == (None, 8081)


def test_the_real_environment_is_read_when_no_environ_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEVMESH_PORT", "9123")
    assert load_settings(write(tmp_path, "")).port == 9123


def declared(tmp_path: Path, entry: str) -> Path:
    return write(tmp_path, f"tenant: acme\nadapters:\n  ci:\n    ci:\n{entry}")


@pytest.mark.parametrize(
    ("written", "seconds"), [("45", 45.0), ("30s", 30.0), ("500ms", 0.5), ("2m", 120.0)]
)
def test_a_declared_timeout_takes_seconds_or_a_duration(
    tmp_path: Path, written: str, seconds: float
) -> None:
    path = declared(tmp_path, f"      provider: buildbot\n      timeout: {written}\n")
    assert load_settings(path, environ={}).adapters.ci["ci"].timeout == seconds


def test_a_declared_username_without_a_token_or_password_is_named(tmp_path: Path) -> None:
    path = declared(tmp_path, "      provider: buildbot\n      username: admin\n")
    with pytest.raises(ConfigError, match=r"adapters\.ci\.ci\.username: needs token or password"):
        load_settings(path, environ={})


def test_a_refused_secret_is_not_kept_in_the_error(tmp_path: Path) -> None:
    path = declared(tmp_path, "      provider: gitlab\n      webhook: {secret: short-secret-1}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert "adapters.ci.ci.webhook.secret: must be at least 16 characters" in str(raised.value)
    assert raised.value.__cause__ is None
    assert "short-secret-1" not in str(raised.value)


def test_devmesh_toolsets_is_a_comma_separated_list_of_names() -> None:
    settings = load_settings(environ={"DEVMESH_TOOLSETS": "builds, Logs,,"})
    assert settings.toolsets == ["builds", "logs"]
    assert "toolsets" not in load_settings(environ={}).model_fields_set


def test_a_malformed_toolset_name_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="toolsets"):
        load_settings(environ={"DEVMESH_TOOLSETS": "builds,no spaces"})
