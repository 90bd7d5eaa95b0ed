"""The tool-list cost benchmark runs and its token counts meet their targets.

Token counts are deterministic (a fixed tokenizer over a fixed catalog), so unlike
timings they may be judged in a test: a change that bloats the default list or the
search mode's, or that stops search finding the tool, fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
LAST_LINE = re.compile(
    r"toollist all_tokens=(\d+) default_tokens=(\d+) search_tokens=(\d+) search_calls=(\d+)"
)


def test_the_default_and_search_lists_stay_small_and_search_finds_the_tool_in_two_calls() -> None:
    done = subprocess.run(
        [sys.executable, "bench/tool_list_cost.py"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    last = LAST_LINE.fullmatch(done.stdout.strip().splitlines()[-1])
    assert last is not None, done.stdout[-2000:]
    every, default, search, calls = (int(group) for group in last.groups())
    assert default <= 3000 < every
    assert search <= 1000
    assert calls <= 2
