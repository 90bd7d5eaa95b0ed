"""The benchmark runs the analyser over the LogChunks development corpus.

The corpus sits beside the repository (``../shared/corpus/logchunks-dev``), as
it does in CI; it is never copied in. Outside CI a checkout without it skips;
in CI (``CI`` set) its absence fails the test.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from bench.failure_analysis import main, read_labels

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "logchunks-dev"
LAST_LINE = re.compile(
    r"^analysis logs=(?P<logs>\d+) key_line_hit=(?P<hit>[\d.]+) recall=[\d.]+ precision=[\d.]+ "
    r"f1=(?P<f1>[\d.]+) category_acc=(?:[\d.]+|n/a) ms_per_log=[\d.]+$"
)


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "labels.jsonl").exists():
        if os.environ.get("CI"):
            pytest.fail(f"the LogChunks corpus is missing at {CORPUS}")
        pytest.skip("the LogChunks corpus is not beside this checkout")
    return CORPUS


def test_the_bench_scores_every_log_and_keeps_the_published_baselines_behind(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "analysis.jsonl"
    assert main(["--corpus", str(corpus), "--json-out", str(out), "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match is not None, last
    labels = (corpus / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    assert int(match["logs"]) == len(labels)
    # Floors well under today's figures (docs/knowledge.md, Failure analysis), over the baselines.
    assert float(match["hit"]) >= 0.85
    assert float(match["f1"]) >= 0.58
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(labels)
    assert set(records[0]) == {
        "id", "category", "excerpt", "error_pattern", "retriable", "confidence", "ms"
    }  # fmt: skip
    assert all(set(e) == {"line", "text"} for r in records for e in r["excerpt"])


def test_the_two_halves_split_the_corpus_by_project(corpus: Path) -> None:
    a = read_labels(corpus, "a", None)
    b = read_labels(corpus, "b", None)
    assert len(a) + len(b) == len(read_labels(corpus, None, None))
    assert a and b
    assert not {label["project"] for label in a} & {label["project"] for label in b}


def test_categories_from_a_file_outside_the_corpus_are_measured(
    corpus: Path, tmp_path: Path
) -> None:
    first = read_labels(corpus, None, None)[0]
    categories = tmp_path / "categories.jsonl"
    categories.write_text(json.dumps({"id": first["id"], "category": "test"}) + "\n")
    labels = read_labels(corpus, None, categories)
    assert labels[0]["category"] == "test"
    assert all("category" not in label for label in labels[1:])
