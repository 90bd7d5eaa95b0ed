"""docs/configuration.md must list every setting, so the reference cannot drift."""

import base64
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from devmesh.config import Settings, load_settings

DOC = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()


# The placeholder a table row uses for the keys of a mapping of sections.
PLACEHOLDERS = {"adapters.ci": "<name>", "events.handlers": "<provider>"}


def _section(annotation: Any) -> type[BaseModel] | None:
    """The model of a section, also when it is optional (``X | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [arg for arg in typing.get_args(annotation) if _section(arg) is not None]
        return models[0] if len(models) == 1 else None
    return None


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        key = f"{prefix}{name}"
        if (section := _section(annotation)) is not None:
            keys += _keys(section, f"{key}.")
        elif typing.get_origin(annotation) is dict and (
            (section := _section(typing.get_args(annotation)[1])) is not None
        ):
            keys += _keys(section, f"{key}.{PLACEHOLDERS[key]}.")
        else:
            keys.append(key)
    return keys


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    for key in _keys(Settings):
        variable = "DEVMESH_" + key.upper().replace(".", "__").replace("-", "_")
        assert f"| `{key}` | `{variable}` |" in DOC, key


def test_the_production_example_is_a_valid_configuration(tmp_path: Path) -> None:
    example = DOC.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "config.yaml"
    path.write_text(example)
    settings = load_settings(
        path,
        environ={
            "DATABASE_URL": "postgresql://devmesh@db.internal/devmesh",
            "DEVMESH_MASTER_KEY": base64.b64encode(b"k" * 32).decode(),
        },
    )
    assert settings.resolved_database_url == "postgresql+asyncpg://devmesh@db.internal/devmesh"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.auto_migrate is False
    assert (settings.egress.allow_loopback, settings.egress.allow_private) == (False, False)


def test_the_declared_tools_example_is_a_valid_file(tmp_path: Path) -> None:
    example = DOC.split("## Tools declared in the file")[1].split("```yaml\n", 1)[1]
    path = tmp_path / "config.yaml"
    path.write_text(example.split("```", 1)[0])
    variables = ("GITLAB_TOKEN", "GITLAB_WEBHOOK_SECRET", "BUILDBOT_PASSWORD")
    settings = load_settings(path, environ={name: "s" * 20 for name in variables})
    assert settings.tenant == "acme"
    assert {name: tool.provider for name, tool in settings.adapters.ci.items()} == {
        "gitlab": "gitlab",
        "nightly": "buildbot",
    }
    assert settings.adapters.ci["gitlab"].rate_limit is not None
    assert settings.adapters.ci["gitlab"].circuit_breaker is not None
    assert settings.adapters.ci["gitlab"].circuit_breaker.timeout == 60.0
