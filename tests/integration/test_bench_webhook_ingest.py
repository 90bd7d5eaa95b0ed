"""The webhook ingest benchmark, run at a tiny size so it cannot rot (no figure is judged)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
LAST_LINE = re.compile(
    r"webhooks accepted_per_s=[\d.]+ handled_per_s=[\d.]+ ack_p99_ms=[\d.]+ "
    r"floor_per_s=[\d.]+ lost=(\d+)"
)


def test_the_ingest_benchmark_runs_and_ends_with_its_machine_readable_line() -> None:
    done = subprocess.run(
        [sys.executable, "bench/webhook_ingest.py", "--deliveries", "10",
         "--concurrency", "16", "--cell-seconds", "20", "--drain-seconds", "30",
         "--skip-postgres"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    last = LAST_LINE.fullmatch(done.stdout.strip().splitlines()[-1])
    assert last is not None, done.stdout[-2000:]
    assert last.group(1) == "0"
