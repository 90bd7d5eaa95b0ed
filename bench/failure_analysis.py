"""Failure analysis quality on a labelled corpus of failed CI logs.

The corpus is a folder in the LogChunks layout: ``labels.jsonl`` (one JSON
object per log with ``id``, ``chunk_first_line``, ``chunk_last_line``,
``key_line`` and, optionally, ``category``) and ``logs/<id>.log.gz`` (or
``logs/<id>.log``). Each log runs through ``analyze_log``, the function the
worker runs, and is measured:

* key line hit: an excerpt line holds the labelled key line;
* line recall and precision of the excerpt against the labelled chunk's span
  (blank lines not counted, as the labels ignore them) and their F1, per log;
  the totals are means over logs (F1 is the mean of per-log F1s);
* category accuracy, over the logs whose label has a ``category``;
* CPU milliseconds per log (analysis only, not reading the file).

The last line is machine-readable:

    analysis logs=… key_line_hit=… recall=… precision=… f1=… category_acc=… ms_per_log=…

Run: ``uv run python bench/failure_analysis.py --corpus DIR``
(``--json-out FILE`` writes one JSON object per log; ``--quiet`` prints totals only).

``--half a|b`` keeps the logs of half the projects only (split by a hash of the
project name, so every log of a project falls in the same half): tune on one
half, check on the other, and a change that fits one project's logs shows.
``--categories FILE`` reads expected categories (``{"id": ..., "category": ...}``
per line) from a file kept outside the corpus, for hand-labellings.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devmesh.knowledge.analysis import FailureAnalysis, analyze_log


@dataclass(frozen=True, slots=True)
class LogScore:
    id: str
    key_line_hit: bool
    recall: float
    precision: float
    f1: float
    category: str
    expected_category: str | None
    ms: float


def read_log(corpus: Path, log_id: str) -> list[str]:
    gz = corpus / "logs" / f"{log_id}.log.gz"
    if gz.exists():
        with gzip.open(gz, "rt", encoding="utf-8", errors="replace") as f:
            text = f.read()
    else:
        text = (corpus / "logs" / f"{log_id}.log").read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def score(
    label: dict[str, Any], lines: list[str], analysis: FailureAnalysis, ms: float
) -> LogScore:
    first, last = int(label["chunk_first_line"]), int(label["chunk_last_line"])
    chunk = {n for n in range(first, last + 1) if n <= len(lines) and lines[n - 1].strip()}
    shown = {e.line for e in analysis.excerpt if e.text.strip()}
    overlap = len(chunk & shown)
    recall = overlap / len(chunk) if chunk else 0.0
    precision = overlap / len(shown) if shown else 0.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    key = str(label["key_line"]).strip()
    hit = bool(key) and any(key in e.text for e in analysis.excerpt)
    return LogScore(
        id=str(label["id"]),
        key_line_hit=hit,
        recall=recall,
        precision=precision,
        f1=f1,
        category=analysis.category,
        expected_category=label.get("category"),
        ms=ms,
    )


def half_of(label: dict[str, Any]) -> str:
    """``a`` or ``b``: the half of the corpus a log's project falls in, stable across runs."""
    project = str(label.get("project") or str(label["id"]).rsplit("__", 1)[0])
    return "ab"[hashlib.sha256(project.encode("utf-8")).digest()[0] % 2]


def read_labels(corpus: Path, half: str | None, categories: Path | None) -> list[dict[str, Any]]:
    labels = [
        json.loads(line)
        for line in (corpus / "labels.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if half is not None:
        labels = [label for label in labels if half_of(label) == half]
    if categories is not None:
        expected = {
            str(record["id"]): str(record["category"])
            for record in map(json.loads, categories.read_text(encoding="utf-8").splitlines())
            if record.get("category")
        }
        labels = [
            {**label, "category": expected[label["id"]]} if label["id"] in expected else label
            for label in labels
        ]
    return labels


def run(
    corpus: Path,
    json_out: Path | None,
    quiet: bool,
    half: str | None = None,
    categories: Path | None = None,
) -> list[LogScore]:
    labels = read_labels(corpus, half, categories)
    scores: list[LogScore] = []
    out = json_out.open("w", encoding="utf-8") if json_out else None
    try:
        for label in labels:
            lines = read_log(corpus, label["id"])
            # CPU time of this process: the analyser is single-threaded and CPU-bound,
            # and a shared machine's load would inflate wall-clock time.
            started = time.process_time()
            analysis = analyze_log(lines)
            ms = (time.process_time() - started) * 1000
            result = score(label, lines, analysis, ms)
            scores.append(result)
            if not quiet:
                print(
                    f"{result.id[:60]:60} hit={int(result.key_line_hit)} "
                    f"r={result.recall:.2f} p={result.precision:.2f} f1={result.f1:.2f} "
                    f"cat={result.category}"
                    + (f"/{result.expected_category}" if result.expected_category else "")
                    + f" ms={ms:.1f}"
                )
            if out is not None:
                record = {
                    "id": label["id"],
                    "category": analysis.category,
                    "excerpt": [{"line": e.line, "text": e.text} for e in analysis.excerpt],
                    "error_pattern": analysis.error_pattern,
                    "retriable": analysis.retriable,
                    "confidence": analysis.confidence,
                    "ms": round(ms, 3),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if out is not None:
            out.close()
    return scores


def summary(scores: list[LogScore]) -> str:
    n = len(scores)
    labelled = [s for s in scores if s.expected_category]
    category_acc = (
        f"{sum(s.category == s.expected_category for s in labelled) / len(labelled):.3f}"
        if labelled
        else "n/a"
    )
    return (
        f"analysis logs={n} "
        f"key_line_hit={sum(s.key_line_hit for s in scores) / n:.3f} "
        f"recall={statistics.fmean(s.recall for s in scores):.3f} "
        f"precision={statistics.fmean(s.precision for s in scores):.3f} "
        f"f1={statistics.fmean(s.f1 for s in scores):.3f} "
        f"category_acc={category_acc} "
        f"ms_per_log={statistics.fmean(s.ms for s in scores):.1f}"
    )


def breakdown(scores: list[LogScore]) -> list[str]:
    """Per category found (and per expected category when labelled): count, hits, F1."""
    rows = []
    by_found: dict[str, list[LogScore]] = defaultdict(list)
    for s in scores:
        by_found[s.category].append(s)
    for category, group in sorted(by_found.items()):
        rows.append(
            f"  found {category:18} logs={len(group):3} "
            f"key_line_hit={sum(s.key_line_hit for s in group) / len(group):.2f} "
            f"f1={statistics.fmean(s.f1 for s in group):.2f}"
        )
    confusion = Counter((s.expected_category, s.category) for s in scores if s.expected_category)
    for (expected, found), count in sorted(confusion.items()):
        if expected != found:
            rows.append(f"  confused {expected} -> {found}: {count}")
    times = sorted(s.ms for s in scores)
    rows.append(f"  ms median={statistics.median(times):.1f} max={times[-1]:.1f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, required=True, help="folder with labels.jsonl")
    parser.add_argument("--json-out", type=Path, help="write one JSON object per log here")
    parser.add_argument("--quiet", action="store_true", help="print the totals only")
    parser.add_argument(
        "--half", choices=("a", "b"), help="only the logs of this half of the projects"
    )
    parser.add_argument(
        "--categories", type=Path, help="expected categories, one JSON object per line"
    )
    args = parser.parse_args(argv)
    scores = run(args.corpus, args.json_out, args.quiet, args.half, args.categories)
    if not scores:
        print("no logs in corpus", file=sys.stderr)
        return 1
    for row in breakdown(scores):
        print(row)
    print(summary(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
