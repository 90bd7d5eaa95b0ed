"""A build's log lines: its console text, cleaned of terminal codes, split into steps.

Jenkins keeps one console per build. Its steps are read from the markers Jenkins
itself prints: a Pipeline's ``[Pipeline] { (<stage>)`` opens a stage (the step is the
stage's name), and in a freestyle job each shell step starts with
``[<workspace>] $ /bin/sh -xe /tmp/jenkins….sh`` (the steps are ``step 1``,
``step 2``, …; lines before the first are ``setup``). The console is read from its
end (``JenkinsConfig.max_log_bytes``), at most ``max_log_lines`` lines.

``failed_only`` keeps the step the build failed in: its last one, since Jenkins stops
a build at the first failing step (the whole log when it did not fail).
"""

from __future__ import annotations

import re

from devmesh.adapters.tailing import Tail
from devmesh.domain.models import LogLine

__all__ = ["log_lines"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_STAGE = re.compile(r"^\[Pipeline\] \{ \((?P<name>.+)\)$")
_SHELL = re.compile(r"^\[[^\]]*\] \$ ")


def log_lines(tail: Tail, *, failed: bool, failed_only: bool, max_lines: int) -> list[LogLine]:
    text = tail.data.decode("utf-8", errors="replace")
    raw = [_ANSI.sub("", line).rstrip("\r") for line in text.split("\n")]
    if raw and raw[-1] == "":
        raw.pop()
    header: list[LogLine] = []
    if tail.clipped:
        dropped = tail.size - len(tail.data)
        note = f"[the first {dropped} bytes of this build's log were not read; its end follows]"
        header.append(LogLine(number=1, step=None, stream="header", text=note))
        raw = raw[1:]  # the first line kept may have lost its start
    named: list[tuple[str, str]] = []
    step, shells = "setup", 0
    for line in raw:
        stage = _STAGE.match(line)
        if stage is not None:
            step = stage.group("name")
        elif _SHELL.match(line):
            shells += 1
            step = f"step {shells}"
        named.append((step, line))
    if failed_only and failed and named:
        # The last step's lines: Jenkins stops a build at the step that failed.
        first = len(named)
        while first > 0 and named[first - 1][0] == named[-1][0]:
            first -= 1
        named, header = named[first:], []
    kept = [*header, *(LogLine(number=1, step=step, text=line) for step, line in named)]
    kept = kept[-max_lines:]
    return [line.model_copy(update={"number": n}) for n, line in enumerate(kept, start=1)]
