"""The client ships as its own small wheel: httpx its only dependency, nothing of the server."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_MODULES = ("devmesh", "fastapi", "sqlalchemy", "mcp", "starlette", "pydantic")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "uv"), "build", "--package", "devops-mcp", "--wheel",
         "--out-dir", str(out), "--quiet"],
        cwd=ROOT, check=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("devops_mcp-*.whl")
    return built


def _metadata(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode().splitlines()


def test_the_wheel_depends_on_httpx_only(wheel: Path) -> None:
    requires = [line for line in _metadata(wheel) if line.startswith("Requires-Dist:")]
    assert [r.split(":", 1)[1].strip().split(">")[0] for r in requires] == ["httpx"]


def test_the_wheel_is_typed_and_holds_the_client_alone(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packages = {name.split("/")[0] for name in archive.namelist()}
        assert "devops_mcp/py.typed" in archive.namelist()
    assert {p for p in packages if not p.endswith(".dist-info")} == {"devops_mcp"}


def test_importing_the_client_loads_nothing_of_the_server(wheel: Path) -> None:
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(wheel)!r})\n"
        "import devops_mcp\n"
        f"assert devops_mcp.__file__.startswith({str(wheel)!r}), devops_mcp.__file__\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_MODULES!r}))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "[]"
