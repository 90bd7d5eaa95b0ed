"""A build's log lines: its CloudWatch Logs events, split into CodeBuild's phases.

CodeBuild's agent writes ``[Container] <time> Entering phase BUILD`` (or
``Phase is DOWNLOAD_SOURCE``) as a phase starts; the lines after it are that phase's
(``step``). ``failed_only`` keeps the lines of the build's failed phase, else of its
last phase (the whole log when it did not fail).
"""

from __future__ import annotations

import re

from devmesh.domain.models import LogLine

__all__ = ["log_lines"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PHASE = re.compile(r"^\[Container\] .*(?:Entering phase|Phase is) (?P<phase>[A-Z_]+)\s*$")


def log_lines(
    messages: list[str], *, failed_stage: str | None, failed: bool, failed_only: bool
) -> list[LogLine]:
    named: list[tuple[str | None, str]] = []
    step: str | None = None
    for message in messages:
        for line in message.rstrip("\n").split("\n"):
            text = _ANSI.sub("", line).rstrip("\r")
            phase = _PHASE.match(text)
            if phase is not None:
                step = phase.group("phase")
            named.append((step, text))
    if failed_only and failed and named:
        wanted = failed_stage or named[-1][0]
        part = [item for item in named if item[0] == wanted]
        named = part or named
    return [
        LogLine(number=n, step=step, text=text) for n, (step, text) in enumerate(named, start=1)
    ]
