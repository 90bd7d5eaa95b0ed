"""docs/configuration.md must list every setting, so the reference cannot drift."""

import base64
from pathlib import Path

from pydantic import BaseModel

from devmesh.config import Settings, load_settings

DOC = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    for key in _keys(Settings):
        variable = "DEVMESH_" + key.upper().replace(".", "__")
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
