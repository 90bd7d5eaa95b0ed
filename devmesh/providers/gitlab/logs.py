"""A pipeline's log lines: its jobs' traces, cleaned of terminal codes, numbered, capped.

A trace is what the runner printed, with colour codes and GitLab's collapsible
section markers (``section_start:<time>:<name>\\r\\e[0K``); both are taken out, and
a line a progress bar rewrote (``\\r``) keeps what was last written. Jobs are read
in pipeline order, each trace at most ``GitLabConfig.max_trace_bytes`` (its end, where
failures are), the whole build at most ``max_log_lines`` lines (again the end).
``failed_only`` reads the failed jobs only (all jobs if none failed). Line numbers
count the lines read, from 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from devmesh.adapters.concurrency import gather_bounded
from devmesh.adapters.tailing import Tail
from devmesh.domain.models import LogLine
from devmesh.providers.gitlab.builds import within_stages
from devmesh.providers.gitlab.client import GitLabClient
from devmesh.providers.gitlab.models import WireJob

__all__ = ["clean_trace", "read_log_lines"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_SECTION = re.compile(r"section_(?:start|end):[0-9]+:[A-Za-z0-9_.\-]+(?:\[[^\]]*\])?\r?")
# Jobs that have not run have no trace worth a request.
_Stream = Literal["stdout", "header"]
_NO_TRACE = frozenset({"created", "pending", "manual", "scheduled", "skipped"})


def clean_trace(text: str) -> list[str]:
    """A trace as plain lines: no colour codes, no section markers, no rewritten text."""
    lines: list[str] = []
    for raw in text.split("\n"):
        line = _ANSI.sub("", _SECTION.sub("", raw))
        if "\r" in line:
            # The terminal showed what was written last on the line.
            parts = [part for part in line.split("\r") if part]
            line = parts[-1] if parts else ""
        lines.append(line)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


async def read_log_lines(
    client: GitLabClient,
    project: str,
    jobs: Sequence[WireJob],
    *,
    failed_only: bool,
    max_lines: int,
    max_trace_bytes: int,
) -> list[LogLine]:
    ordered = [job for _, members in within_stages(jobs) for job in members]
    if failed_only:
        ordered = [job for job in ordered if job.status == "failed"] or ordered
    ordered = [job for job in ordered if job.status not in _NO_TRACE]
    traces = await gather_bounded(
        client.trace(project, job.id, max_bytes=max_trace_bytes) for job in ordered
    )
    lines: list[LogLine] = []
    for job, tail in zip(ordered, traces, strict=True):
        step = f"{job.stage}/{job.name}"
        for stream, text in _job_lines(tail):
            lines.append(LogLine(number=len(lines) + 1, step=step, stream=stream, text=text))
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
    return lines


def _job_lines(tail: Tail) -> list[tuple[_Stream, str]]:
    text = tail.data.decode("utf-8", errors="replace")
    body = clean_trace(text)
    if not tail.clipped:
        return [("stdout", line) for line in body]
    # The first line kept may have lost its start; the note says where the log resumes.
    dropped = tail.size - len(tail.data)
    note = f"[the first {dropped} bytes of this job's log were not read; its end follows]"
    return [("header", note), *(("stdout", line) for line in body[1:])]
