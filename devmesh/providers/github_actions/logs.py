"""A run's log lines: its jobs' logs, cleaned of timestamps and markers, numbered, capped.

GitHub serves each job's log as plain text (a redirect to a signed URL) where every
line starts with an ISO 8601 timestamp, and the runner's workflow commands mark groups
and annotations (``##[group]Run make``, ``##[endgroup]``, ``##[error]…``). The
timestamps and colour codes are taken out; a group's title stays as a line, an
annotation reads as the UI shows it (``Error: …``). Jobs are read in the order they
started, each log at most ``max_job_log_bytes`` (its end, where failures are), the run
at most ``max_log_lines`` (again the end). ``failed_only`` reads the failed jobs (all
jobs if none failed). Line numbers count the lines read, from 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from devmesh.adapters.concurrency import gather_bounded
from devmesh.adapters.tailing import Tail
from devmesh.domain.models import LogLine
from devmesh.providers.github_actions.builds import FAILED_CONCLUSIONS, ordered
from devmesh.providers.github_actions.client import GitHubClient
from devmesh.providers.github_actions.models import WireJob

__all__ = ["clean_log", "read_log_lines"]

_STAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_COMMAND = re.compile(r"^##\[(?P<name>[a-z]+)\]")
_SHOWN = {"error": "Error: ", "warning": "Warning: ", "notice": "Notice: ", "group": ""}
_Stream = Literal["stdout", "header"]


def clean_log(text: str) -> list[str]:
    """A job log as plain lines: no timestamps, colour codes or group ends."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = _ANSI.sub("", _STAMP.sub("", raw))
        command = _COMMAND.match(line)
        if command is not None:
            name = command.group("name")
            if name == "endgroup":
                continue
            if name in _SHOWN:
                line = _SHOWN[name] + line[command.end() :]
        lines.append(line)
    return lines


async def read_log_lines(
    client: GitHubClient,
    repo: str,
    jobs: Sequence[WireJob],
    *,
    failed_only: bool,
    max_lines: int,
    max_job_log_bytes: int,
) -> list[LogLine]:
    chosen = [job for job in ordered(jobs) if job.status != "queued"]
    if failed_only:
        chosen = [job for job in chosen if job.conclusion in FAILED_CONCLUSIONS] or chosen
    tails = await gather_bounded(
        client.job_log(repo, job.id, max_bytes=max_job_log_bytes) for job in chosen
    )
    lines: list[LogLine] = []
    for job, tail in zip(chosen, tails, strict=True):
        for stream, text in _job_lines(tail):
            lines.append(LogLine(number=len(lines) + 1, step=job.name, stream=stream, text=text))
    return lines[-max_lines:] if len(lines) > max_lines else lines


def _job_lines(tail: Tail) -> list[tuple[_Stream, str]]:
    body = clean_log(tail.data.decode("utf-8", errors="replace"))
    if not tail.clipped:
        return [("stdout", line) for line in body]
    dropped = tail.size - len(tail.data)
    note = f"[the first {dropped} bytes of this job's log were not read; its end follows]"
    return [("header", note), *(("stdout", line) for line in body[1:])]
