"""Run a program of ``examples/`` as its user would: a separate process, its settings
from the environment."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio

__all__ = ["Run", "run_example"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIME_LIMIT_S = 120


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


async def run_example(name: str, *args: str, url: str, api_key: str) -> Run:
    """``python examples/{name} args…`` against ``url`` with ``api_key``, polling fast."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DEVMESH_URL": url,
        "DEVMESH_API_KEY": api_key,
        "POLL_SECONDS": "0.2",
        "MAX_WAIT_SECONDS": "60",
    }
    with anyio.fail_after(TIME_LIMIT_S):
        done = await anyio.run_process(
            [sys.executable, str(EXAMPLES / name), *args], env=env, check=False
        )
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())
