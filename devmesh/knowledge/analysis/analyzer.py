"""The failure analyser: from a failed build's log to a category, an excerpt and a signature.

How it decides, in order:

1. The failed region. A provider's steps name it when they are given (the
   first failed step's line span). Otherwise the first command the CI runner
   reports as failed (Travis ``The command "..." exited with 1.``, GitLab
   ``ERROR: Job failed``, GitHub ``Process completed with exit code``) ends
   it, and that command's echo (``$ cmd``) starts it. Later failures (deploy,
   after_failure) are consequences, so the first one counts.
2. Candidate lines. A keyword search over the whole window picks the lines
   that may matter; each is matched against the rule set (``rules.py``) and
   every hit gets its rule's weight, more inside the failed region and less
   outside it (the region is a hint, not a fence: a test command may exit 0
   and a later check fail). Lines the project's last passing log also holds
   (digits masked) are dropped: what a passing build prints explains nothing.
3. The key block. Hits a few lines apart form blocks, scored by their best
   line plus a little for the others; a lone failing line among passing ones
   (a runner's progress list) scores less. The first block scoring near the
   best is chosen: a runner's first detailed failure is what a developer
   reads; the summary at the end repeats it with less detail.
4. The excerpt: that block, the heading line above it, and the indented or
   continuing lines after it (stack traces, diffs), at most ``EXCERPT_MAX``.
5. Category, signature, reason and retriability from the block's rules and
   the signals near the failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from devmesh.knowledge.analysis.models import (
    Category,
    ExcerptLine,
    FailureAnalysis,
    StepOutcome,
)
from devmesh.knowledge.analysis.retry import combine, find_signals
from devmesh.knowledge.analysis.rules import Rule, candidates, is_benign, match_rules
from devmesh.knowledge.analysis.signature import mask, template

__all__ = ["EXCERPT_MAX", "MAX_LINES", "analyze_log"]

EXCERPT_MAX = 30
# Work is capped: only the last MAX_LINES lines of a longer window are read.
MAX_LINES = 40_000
# Hits at most this many lines apart belong to one block.
_GAP = 3
# A block is "near the best" when it scores at least this share of the best.
_NEAR_BEST = 0.9
_VERDICTS = frozenset({"ci-command-failed", "job-failed", "timeout-exit", "ci-no-output"})
# Score factor of a lone failing line in a list of passing ones.
_PROGRESS = 0.6
# Bare-word hits leading a block that weigh less than this share of its key line are dropped.
_WEAK_LEAD = 0.5
# Weight factor of hits inside the failed region.
_IN_REGION = 1.5
# ... and outside it: set-up noise (a download retried, a cache missed) that the build survived.
_OUTSIDE_REGION = 0.6

_FAILED_COMMAND = re.compile(
    r'^The command "(?P<cmd>.*)" (?:failed|exited with (?P<code>[1-9]\d*))\.?(?: Retrying.*)?\s*$|'
    r"^ERROR: Job failed\b|^Error: Process completed with exit code [1-9]"
)
_TRAVIS_TAIL_START = re.compile(r'^" exited with (?P<code>[1-9]\d*)\.')
_COMMAND_ECHO = re.compile(r"^\$ (?P<cmd>\S.*)$")
_CANCELLED = {"cancelled", "canceled", "aborted-by-user", "manual-cancel"}
_FAILED_STEP = {"failed", "failure", "error", "errored", "timedout", "timeout", "exception"}

_REASONS: dict[Category, str] = {
    "test": "Tests failed",
    "compile": "The build did not compile",
    "lint": "A linter or format check failed",
    "dependency": "A dependency could not be installed",
    "configuration": "The build is misconfigured",
    "infrastructure": "The CI infrastructure failed",
    "timeout": "The build ran out of time",
    "cancelled-by-user": "The build was cancelled",
    "other": "The build failed",
}
# When nothing in the log decides, how sure we are that a retry would not help.
_NOT_RETRIABLE_CONFIDENCE: dict[Category, float] = {
    "compile": 0.9,
    "lint": 0.95,
    "configuration": 0.85,
    "dependency": 0.6,
    "test": 0.7,
    "other": 0.5,
    "timeout": 0.4,
    "infrastructure": 0.3,
    "cancelled-by-user": 0.95,
}


@dataclass(slots=True)
class _Hit:
    index: int
    weight: float
    rules: list[Rule]


@dataclass(slots=True)
class _Block:
    hits: list[_Hit]
    score: float

    @property
    def first(self) -> int:
        return self.hits[0].index

    @property
    def last(self) -> int:
        return self.hits[-1].index


def analyze_log(
    lines: Sequence[str],
    *,
    first_line: int = 1,
    failed_stage: str | None = None,
    steps: Sequence[StepOutcome] = (),
    status: str | None = None,
    passing_log: Sequence[str] | None = None,
) -> FailureAnalysis:
    """Analyse a failed build's log; pure, synchronous and deterministic.

    ``lines`` are cleaned log lines (no ANSI, CR or control characters);
    ``first_line`` is the number of ``lines[0]`` in the full log. ``steps``
    (the provider's steps with their line spans), ``status`` (the build's
    status: a cancelled build is ``cancelled-by-user``) and ``passing_log``
    (the project's last passing log) sharpen the answer when known.
    """
    offset = max(0, len(lines) - MAX_LINES)
    window = lines[offset:]
    base = first_line + offset  # the log line number of window[0]

    start, end, stage = _failed_region(window, base, steps)
    stage = failed_stage or stage
    cancelled = status is not None and status.lower() in _CANCELLED
    if not cancelled:
        cancelled = any(s.status.lower() in _CANCELLED for s in steps) and not any(
            s.status.lower() in _FAILED_STEP for s in steps
        )

    known = {template(line) for line in passing_log} if passing_log else set()
    hits = _hits(window, start, end, known)
    block = _choose(window, hits)

    if block is None:
        excerpt_span = _tail(window, start, end)
        key_index = excerpt_span[1] if excerpt_span[1] >= excerpt_span[0] else None
        block_rules: list[Rule] = []
    else:
        excerpt_span = _extend(window, block, end)
        key_index = _key(block).index
        block_rules = [rule for hit in block.hits for rule in hit.rules]

    first, last = excerpt_span
    excerpt = [
        ExcerptLine(line=base + i, text=window[i]) for i in range(first, last + 1) if first <= last
    ]
    near = window[max(start, end - 60) : end + 1]
    signals = find_signals([e.text for e in excerpt] + list(near))

    category = _category(block_rules, hits, stage, end, cancelled)
    key_text = window[key_index] if key_index is not None else ""
    key_rule = _key(block).rules[0].name if block is not None else "none"
    error_pattern = f"{category}:{key_rule}:{mask(key_text)}"
    if block is not None and block.first != key_index:
        # The block's first line often names what failed (the test, the file).
        error_pattern += f" @ {mask(window[block.first])}"

    if category == "cancelled-by-user":
        retriable, confidence, names = False, 0.95, ["cancelled by user"]
    elif signals:
        retriable = True
        confidence = round(combine([s.strength for s in signals]), 3)
        names = [s.name for s in signals]
    else:
        retriable, confidence, names = False, _NOT_RETRIABLE_CONFIDENCE[category], []

    return FailureAnalysis(
        category=category,
        failed_stage=stage,
        failure_reason=_reason(category, stage, key_text),
        excerpt=excerpt,
        error_pattern=error_pattern,
        retriable=retriable,
        confidence=confidence,
        signals=names,
    )


def _failed_region(
    window: Sequence[str], base: int, steps: Sequence[StepOutcome]
) -> tuple[int, int, str | None]:
    """The failed part of the window as (first index, last index, stage name)."""
    last = len(window) - 1
    for step in steps:
        if step.status.lower() in _FAILED_STEP:
            if step.first_line is None or step.last_line is None:
                return 0, last, step.name
            first = max(0, step.first_line - base)
            end = min(last, step.last_line - base)
            if first <= end:
                return first, end, step.name
            return 0, last, step.name
    # The first failed command: later ones (deploy, after_failure) fail because of it.
    for i in range(last + 1):
        match = _FAILED_COMMAND.match(window[i])
        tail = None if match else _TRAVIS_TAIL_START.match(window[i])
        if match is None and tail is None:
            continue
        command = match.group("cmd") if match is not None else None
        head = i
        if tail is not None:
            # A multi-line command: its message starts at 'The command "'.
            while head > 0 and i - head < 200 and not window[head].startswith('The command "'):
                head -= 1
            command = window[head][len('The command "') :].strip() or None
        start = _command_start(window, head, command)
        if command is None and (echo := _COMMAND_ECHO.match(window[start])) is not None:
            command = echo.group("cmd")
        return start, i, _short(command) if command else None
    return 0, last, None


def _command_start(window: Sequence[str], head: int, command: str | None) -> int:
    """Where the failed command's output starts: its echo (``$ cmd``), found by its text.

    Tools echo their own sub-commands the same way (yarn prints ``$ eslint ...``),
    so the echo of the command itself is preferred over the nearest one.
    """
    nearest: int | None = None
    for j in range(head - 1, -1, -1):
        line = window[j]
        if line.startswith("The command "):
            break  # the previous command's end
        if _COMMAND_ECHO.match(line):
            if command is None or line[2:].startswith(command[:60]):
                return j
            if nearest is None:
                nearest = j
    return nearest if nearest is not None else 0


def _short(command: str) -> str:
    return command if len(command) <= 120 else command[:117] + "..."


def _hits(window: Sequence[str], start: int, end: int, known: set[str]) -> list[_Hit]:
    """Rule hits over the whole window, those in the failed region weighing more.

    The region is a hint, not a fence: a command that runs the tests may exit 0
    and a later check fail, or a retried command's first attempt hold the error.
    """
    hits: list[_Hit] = []
    seen: dict[str, list[Rule]] = {}
    for i in candidates(window):
        line = window[i]
        if len(line) > 2_000:
            line = line[:2_000]
        shape = template(line)
        if shape in known:
            continue  # the last passing build printed it too: it explains nothing
        # Repetitive logs print the same line with other numbers: match each shape
        # once. Which counts are zero stays in the key: "1 failed, 0 skipped" is a
        # failure where "0 failed, 0 skipped" is not.
        key = shape + "\0" + "".join("z" if n == "0" else "n" for n in _COUNT.findall(line))
        rules = seen.get(key)
        if rules is None:
            rules = sorted(match_rules(line), key=lambda r: -r.weight)
            seen[key] = rules
        if not rules:
            continue
        weight = rules[0].weight + 0.25 * min(2.0, sum(r.weight for r in rules[1:]))
        weight *= _IN_REGION if start <= i <= end else _OUTSIDE_REGION
        hits.append(_Hit(i, weight, rules))
    return hits


_COUNT = re.compile(r"\d+")


def _choose(window: Sequence[str], hits: list[_Hit]) -> _Block | None:
    if not hits:
        return None
    blocks: list[_Block] = []
    current: list[_Hit] = [hits[0]]
    for hit in hits[1:]:
        # The runner's verdict on a command stands alone, not joined to the output above.
        verdict = hit.rules[0].name in _VERDICTS
        if hit.index - current[-1].index <= _GAP and not verdict:
            current.append(hit)
        else:
            blocks.append(_scored(current))
            current = [hit]
    blocks.append(_scored(current))
    for block in blocks:
        if _is_progress(window, block):
            block.score *= _PROGRESS
    best = max(block.score for block in blocks)
    chosen = next(block for block in blocks if block.score >= _NEAR_BEST * best)
    return _trimmed(window, chosen)


def _trimmed(window: Sequence[str], block: _Block) -> _Block:
    """The block without the bare error words set apart before it.

    Log lines at error level (``[error] ...``) printed while a test ran come
    just before the test runner's own verdict on it, a blank or rule line
    between: the verdict is the failure, the chatter before it is not. A bare
    error line running straight into the failure's detail is its headline and
    stays.
    """
    key = _key(block).weight
    keep = 0
    while (
        keep < len(block.hits) - 1
        and block.hits[keep].rules[0].weight <= 1
        and block.hits[keep].weight < _WEAK_LEAD * key
    ):
        keep += 1
    if not keep:
        return block
    between = window[block.hits[keep - 1].index + 1 : block.hits[keep].index]
    if not any(_RULE_LINE.match(line) for line in between):
        return block
    return _Block(block.hits[keep:], block.score)


# A blank line or one drawn with punctuation ("- - - -", "=====") sets output apart.
_RULE_LINE = re.compile(r"^[\W_]*$")


def _is_progress(window: Sequence[str], block: _Block) -> bool:
    """A lone failing line among passing ones: a runner's progress list, not its detail.

    (``test x ... FAILED`` among ``... ok`` lines, go's parent ``--- FAIL`` over
    ``--- PASS`` subtests, mocha's ``1) name`` among ``✓`` lines.)
    """
    if block.first != block.last:
        return False
    i = block.first
    around = [window[j] for j in (i - 1, i + 1) if 0 <= j < len(window) and window[j].strip()]
    return any(is_benign(line) for line in around)


def _scored(hits: list[_Hit]) -> _Block:
    # The best line decides; the others add a little, so a tool's own failure
    # headline beats a pile of logged exceptions from tests that passed.
    weights = sorted((hit.weight for hit in hits), reverse=True)
    return _Block(hits, weights[0] + 0.1 * min(5.0, sum(weights[1:])))


def _key(block: _Block) -> _Hit:
    best = max(hit.weight for hit in block.hits)
    return next(hit for hit in block.hits if hit.weight == best)


def _extend(window: Sequence[str], block: _Block, end: int) -> tuple[int, int]:
    """The block's lines plus the indented or continuing lines after it, capped.

    A line shaped like the block's first one (``[info] - name``, ``  2) name``:
    the same bullet at the same indentation) that is not itself a failure is
    the runner moving on to the next test, so the excerpt ends there.
    """
    first, last = block.first, block.last
    if first > 0 and _HEADING.match(window[first - 1]) and not is_benign(window[first - 1]):
        first -= 1  # the heading the block's lines belong to (a file name, a test name)
    if last - first + 1 > EXCERPT_MAX:
        # A long block (a diff, a list of violations): its start says most.
        return first, first + EXCERPT_MAX - 1
    bullet = _bullet(window[block.first])
    key_rule = _key(block).rules[0]
    i = last + 1
    while i <= end and i - first < EXCERPT_MAX:
        line = window[i]
        if not line.strip():
            # A blank line ends the excerpt unless what follows is still indented
            # detail or the same tool's next error (a compiler's, a linter's).
            if i + 1 <= end and i + 1 - first < EXCERPT_MAX:
                after = window[i + 1]
                if after[:1] in (" ", "\t") or (
                    key_rule is not None
                    and key_rule.category in _LISTED
                    and key_rule.pattern.search(after)
                ):
                    i += 1
                    continue
            break
        if _is_new_section(line) or is_benign(line):
            break
        if bullet is not None and _bullet(line) == bullet:
            break
        last = i
        i += 1
    return first, last


# Kinds of failure whose tools list every error: the next one belongs in the excerpt.
_LISTED: frozenset[Category | None] = frozenset({"compile", "lint"})
# A list item's bullet: an optional runner prefix (``[info]``), indentation and a
# mark (``-``, ``*``, ``•``, jest's ``●``, ``N)``), digits masked; None for a line that has none.
_BULLET = re.compile(r"^(?:\[\w+\] )?\s*(?:[-*•●✕✗✖\u00d7]|\d+[.)]) ")


def _bullet(line: str) -> str | None:
    match = _BULLET.match(line)
    return re.sub(r"\d+", "0", match.group()) if match else None


_HEADING = re.compile(r"^\S.*:\s*$|^\S+\.\w{1,6}\s*$")
_SECTION = re.compile(r'^(?:\$ |The command "|\+ |travis_|==> |> |\[INFO\] -{5,}|-{10,}$|={10,}$)')


def _is_new_section(line: str) -> bool:
    return bool(_SECTION.match(line))


def _tail(window: Sequence[str], start: int, end: int) -> tuple[int, int]:
    """No rule matched: the last non-blank lines of the failed region."""
    last = end
    while last >= start and not window[last].strip():
        last -= 1
    return max(start, last - 9), last


def _category(
    block_rules: list[Rule],
    hits: list[_Hit],
    stage: str | None,
    end: int,
    cancelled: bool,
) -> Category:
    if cancelled:
        return "cancelled-by-user"
    # Verdicts about the whole job (time limit, lost runner) near the end win.
    for hit in hits:
        if hit.index >= end - 5:
            for rule in hit.rules:
                if rule.category in ("timeout", "infrastructure") and rule.weight >= 4:
                    return rule.category
    votes: dict[Category, float] = {}
    for rule in block_rules:
        if rule.category is not None:
            votes[rule.category] = votes.get(rule.category, 0.0) + rule.weight
    if votes:
        return max(votes, key=lambda category: votes[category])
    # The block says what broke but not what kind (a bare exception): the
    # failed command's name does, when it is a test, lint, install or build.
    for pattern, category in _STAGE_HINTS:
        if stage is not None and pattern.search(stage):
            return category
    return "other"


_STAGE_HINTS: tuple[tuple[re.Pattern[str], Category], ...] = (
    (
        re.compile(r"lint|format|style|prettier|eslint|flake8|rubocop|credo|clippy|vet\b", re.I),
        "lint",
    ),
    (re.compile(r"test|spec|check|verify|e2e|qunit|pytest|jest|mocha", re.I), "test"),
    (
        re.compile(r"install|deps|dependencies|bundle|restore|fetch|npm ci|pip\b", re.I),
        "dependency",
    ),
    (re.compile(r"build|compile|make|cmake|gradle|mvn|cargo|tsc\b", re.I), "compile"),
)


def _reason(category: Category, stage: str | None, key_text: str) -> str:
    head = _REASONS[category]
    where = f" in {stage}" if stage else ""
    detail = " ".join(re.sub(r"\[\d+(?:;\d+)*m", "", key_text).split())
    if len(detail) > 160:
        detail = detail[:157] + "..."
    return f"{head}{where}: {detail}." if detail else f"{head}{where}."
