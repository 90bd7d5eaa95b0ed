"""py-spy of the service under MCP and REST load, summarised to the hottest code."""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from bench.overhead.calls import (
    MCP_PATH,
    MCP_TOOL,
    Worker,
    capture_call,
    lean_client,
    replayed_calls,
    rest_calls,
)
from bench.overhead.measuring import Bench, Result, run_phase
from bench.overhead.processes import Gateway, spawn, stop, tail

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]+?)(?::\d+)?\)$")
_THREAD = re.compile(r"^thread \(\w+\): ?(?P<name>.*)$")
# Inclusive time is listed for the code whose cost we can act on: ours, and the MCP SDK's.
_OWNED = ("devmesh/", "mcp/")


def _layer(file: str) -> str:
    """The package (or stdlib module) a frame's file belongs to, from py-spy's short name."""
    if file.startswith("<frozen "):
        return file.removeprefix("<frozen ").split(".")[0].rstrip(">")
    return file.split("/", 1)[0].removesuffix(".py")


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:6.1%}"


def summarise_profile(raw: Path, top: int = 15) -> list[str]:
    """Collapsed stacks (py-spy --format raw --threads) → where the active samples are."""
    threads: Counter[str] = Counter()
    self_layer: Counter[str] = Counter()
    self_func: Counter[str] = Counter()
    owned: Counter[str] = Counter()
    roots: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        frames = [m for f in parts if (m := _FRAME.match(f))]
        if not frames:
            continue
        total += count
        thread = _THREAD.match(parts[0])
        # aiosqlite names each connection's thread after its function; one name for all.
        name = thread["name"] if thread else "?"
        threads[re.sub(r"^Thread-\d+ ", "Thread-N ", name)] += count
        # SQLAlchemy's async ORM runs in greenlets, whose stacks start afresh: their
        # first frame, not the request's, says what they do.
        roots[f"{frames[0]['func']} ({frames[0]['file']})"] += count
        leaf = frames[-1]
        self_layer[_layer(leaf["file"])] += count
        self_func[f"{leaf['func']} ({leaf['file']})"] += count
        for label in {f"{m['func']} ({m['file']})" for m in frames if m["file"].startswith(_OWNED)}:
            owned[label] += count
    if not total:
        return ["(no samples)"]
    lines = [f"{total} active samples; by thread:"]
    lines += [f"  {_percent(n, total)}  {name}" for name, n in threads.most_common(5)]
    lines.append("by first frame (the server's main; others are greenlets or threads):")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in roots.most_common(8)]
    lines.append("self time by package (the leaf frame's):")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in self_layer.most_common(top)]
    lines.append("self time, hottest functions:")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in self_func.most_common(top)]
    lines.append("inclusive time of devmesh and MCP SDK functions:")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in owned.most_common(top + 10)]
    return lines


async def profile(bench: Bench, gateway: Gateway, work: Path) -> list[str]:
    """py-spy record on the service while MCP, then REST, load runs; a summary of each."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    report: list[str] = []
    seconds = bench.args.profile_seconds
    mcp_url = f"{gateway.base_url}{MCP_PATH}"
    captured = await capture_call(mcp_url, headers, MCP_TOOL, {"build_id": "1"})
    async with lean_client() as http:
        loads: list[tuple[str, Worker]] = [
            ("mcp", replayed_calls(http, captured)),
            ("rest", rest_calls(http, gateway.base_url, gateway.api_key)),
        ]
        for name, worker in loads:
            out = work / f"profile-{name}.txt"
            # --gil: only the thread holding the GIL, i.e. where the one core this
            # process can use for Python goes; --nonblocking: sampled without pausing
            # the service, so the measurement does not slow the load it watches.
            command = [spy, "record", "--pid", str(gateway.pid), "--rate", "250",
                       "--duration", str(math.ceil(seconds)), "--format", "raw",
                       "--output", str(out), "--threads", "--gil", "--nonblocking"]  # fmt: skip
            spy_log = work / f"py-spy-{name}.log"
            recorder = spawn(command, work=work, log=spy_log.name)
            try:
                await asyncio.sleep(0.5)  # let py-spy attach before the load starts
                await run_phase(
                    worker,
                    concurrency=8,
                    requests=10**9,  # bounded by time: the recording's length
                    seconds=seconds,
                    result=Result("embedded", f"profile {name}", 8),
                )
                await asyncio.to_thread(recorder.wait, seconds + 30)
            finally:
                stop(recorder)
            report.append(f"--- py-spy, {name} load at concurrency 8 for {seconds:.0f} s ---")
            if recorder.returncode != 0 or not out.exists():
                report.append(f"py-spy failed (exit {recorder.returncode}): {tail(spy_log, 5)}")
                continue
            report += summarise_profile(out)
            kept = bench.args.profile_dir
            if kept is not None:
                kept.mkdir(parents=True, exist_ok=True)
                shutil.copy(out, kept / out.name)
    return report
