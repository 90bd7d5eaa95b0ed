"""A build's log lines: every step's stdio log, numbered across the build, capped.

``read_log_lines`` reads every step's stdio log (Buildbot's ``s`` logs; html and text
logs are left out), at most ``BuildbotConfig.max_log_lines`` lines (50,000 by
default): past that the end of the build is kept, where failures are. Lines are
numbered by their place in the whole build log, so a number means the same line
whether or not ``failed_only`` or the cap left earlier lines out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from devmesh.adapters.concurrency import gather_bounded
from devmesh.domain.models import LogLine
from devmesh.providers.buildbot.builds import FAILED_STEP_RESULTS
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import WireLog, WireLogChunk, WireStep

__all__ = ["read_log_lines"]

_LOG_PAGE_LINES = 10_000
_Stream = Literal["stdout", "stderr", "header"]
_STREAMS: dict[str, _Stream] = {"o": "stdout", "e": "stderr", "h": "header"}


@dataclass(frozen=True)
class _LogSlice:
    step: str
    log: WireLog
    first_number: int  # of the log's first line, in the whole build log
    offset: int  # first line to read, within the log
    count: int


async def read_log_lines(
    client: BuildbotClient, buildid: int, *, failed_only: bool, max_lines: int
) -> list[LogLine]:
    steps = await client.steps(buildid)
    # Every step's logs are listed, not only the chosen ones, so line numbers can count
    # the lines before them.
    logs = await gather_bounded(client.logs(step.stepid) for step in steps)
    chosen = steps
    if failed_only:
        chosen = [s for s in steps if s.results in FAILED_STEP_RESULTS] or steps
    slices = _plan(steps, logs, {step.stepid for step in chosen}, max_lines)
    contents = await gather_bounded(_read(client, piece) for piece in slices)
    lines: list[LogLine] = []
    for piece, content in zip(slices, contents, strict=True):
        for index, (stream, text) in enumerate(content[: piece.count]):
            lines.append(
                LogLine(
                    number=piece.first_number + piece.offset + index,
                    step=piece.step,
                    stream=stream,
                    text=text.removesuffix("\r"),
                )
            )
    return lines


def _plan(
    steps: Sequence[WireStep], logs: Sequence[list[WireLog]], chosen: set[int], max_lines: int
) -> list[_LogSlice]:
    """Which lines of which logs to read: the chosen steps' stdio, the end if too long."""
    slices: list[_LogSlice] = []
    number = 1
    for step, step_logs in zip(steps, logs, strict=True):
        for log in step_logs:
            if log.type != "s":
                continue
            if step.stepid in chosen and log.num_lines > 0:
                slices.append(_LogSlice(step.name, log, number, 0, log.num_lines))
            number += log.num_lines
    excess = sum(piece.count for piece in slices) - max_lines
    while excess > 0 and slices:
        first = slices[0]
        if first.count <= excess:
            excess -= first.count
            slices.pop(0)
        else:
            slices[0] = _LogSlice(
                first.step,
                first.log,
                first.first_number,
                first.offset + excess,
                first.count - excess,
            )
            excess = 0
    return slices


async def _read(client: BuildbotClient, piece: _LogSlice) -> list[tuple[_Stream, str]]:
    chunks: list[WireLogChunk] = []
    for start in range(piece.offset, piece.offset + piece.count, _LOG_PAGE_LINES):
        size = min(_LOG_PAGE_LINES, piece.offset + piece.count - start)
        chunks += await client.log_chunks(piece.log.logid, offset=start, limit=size)
    return _parse_log(chunks)


def _parse_log(chunks: Sequence[WireLogChunk]) -> list[tuple[_Stream, str]]:
    """(stream, text) per line; each stored line starts with its stream's letter."""
    lines: list[tuple[_Stream, str]] = []
    for chunk in sorted(chunks, key=lambda c: c.firstline):
        parts = chunk.content.split("\n")
        if parts and parts[-1] == "":
            parts.pop()
        for raw in parts:
            stream = _STREAMS.get(raw[:1])
            lines.append((stream, raw[1:]) if stream else ("stdout", raw))
    return lines
