"""A build's log lines: each job's steps' output, in workflow, job and step order.

API v2 has no log endpoint; API v1.1's "Single Job" lists a job's steps, and each
step's action has an ``output_url`` whose answer is the output as ``[{message, time,
type}]``. A line's step is ``<job>: <step>`` (``test: Run tests``). Terminal codes
are taken out and ``\\r\\n`` line ends become lines. At most ``max_lines`` lines are
kept: the end, as a build's end says most about how it went.

``failed_only`` keeps the steps that failed (CircleCI stops a job at its failing
step, so that step's output ends with the error); a build that did not fail keeps
its whole log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devmesh.domain.models import LogLine

__all__ = ["StepOutput", "log_lines"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class StepOutput:
    job: str
    step: str
    failed: bool
    messages: list[str]
    clipped: bool = False


def log_lines(
    steps: list[StepOutput], *, failed: bool, failed_only: bool, max_lines: int
) -> list[LogLine]:
    chosen = [s for s in steps if s.failed] if failed_only and failed else steps
    kept: list[LogLine] = []
    for output in chosen:
        name = f"{output.job}: {output.step}"
        text = _ANSI.sub("", "".join(output.messages)).replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        kept.extend(LogLine(number=1, step=name, text=line) for line in lines)
        if output.clipped:
            note = "[this step's output was longer than max_step_bytes; its start is shown]"
            kept.append(LogLine(number=1, step=name, stream="header", text=note))
    kept = kept[-max_lines:]
    return [line.model_copy(update={"number": n}) for n, line in enumerate(kept, start=1)]
