"""Smoke test of benchmarks/searchers.py's machinery on the tiny random model (about 15 s).

``--config tiny`` runs the real pipeline (baseline campaign, ICL scoring, one campaign per
searcher with a shared model and score cache, test subset, ensembles, CSV and markdown) on SST-2
with two split seeds and two searchers, one of them white-box (soft). The tiny model's
accuracies mean nothing; the test checks what the benchmark promises about its rows.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # the benchmarks import each other as scripts do
    try:
        import searchers

        yield searchers
    finally:
        sys.path.remove(str(BENCHMARKS))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_tiny_run_writes_rows_summary_and_table(
    bench, tiny_causal, tiny_causal_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", "tiny", "--model", str(tiny_causal_dir), "--out", str(tmp_path)]
    rows = bench.main(argv, tiny_causal)
    table = capsys.readouterr().out

    baselines = ["hand-written (best of 3 by dev)", "ICL (4 random demos)"]
    methods = [*baselines, "random", "soft", "ape"]
    stored = read_csv(tmp_path / "searchers-tiny.csv")
    assert [(r["seed"], r["method"]) for r in stored] == [
        (seed, m) for seed in ("13", "42") for m in methods
    ]
    assert len(rows) == len(stored)
    for row in stored:
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0
        assert row["test_examples"] == "8"  # the fixed subset, for every row
    searcher_rows = [r for r in stored if r["kind"] == "searcher"]
    # The same budget for every searcher: 2 passes over the 32 dev examples, never more.
    assert all(0 < int(r["dev_examples_scored"]) <= 64 for r in searcher_rows)
    # Two finalists each, so every searcher has its average ensemble on test (but the writer:
    # the tiny model's writing is mostly dropped, so it may rank its one starting prompt only).
    assert all(r["ensemble_test_accuracy"] for r in searcher_rows if r["method"] != "ape")
    reads = {r["method"]: int(r["internal_train_reads"]) for r in searcher_rows}
    assert reads["soft"] > 0 and reads["soft"] % 32 == 0  # whole epochs over 32 train examples
    assert reads["random"] == 0
    # The writer's own proposer calls are counted apart (the tiny model writes junk: dropped).
    ape = [r for r in searcher_rows if r["method"] == "ape"]
    assert all(int(r["writer_answers"]) > 0 and float(r["dropped_share"]) > 0.5 for r in ape)
    assert all(r["writer_answers"] == "" for r in searcher_rows if r["method"] != "ape")

    summary = read_csv(tmp_path / "searchers-tiny-summary.csv")
    assert [s["method"] for s in summary] == methods
    assert all(s["seeds"] == "2" and s["test_accuracy_std"] != "" for s in summary)
    markdown = (tmp_path / "searchers-tiny.md").read_text(encoding="utf-8")
    assert markdown in table
    assert "benchmarks/searchers.py --config tiny" in markdown
    assert "| sst-2 | soft |" in markdown and "Acceptance" in markdown
    assert "| sst-2 | ape |" in markdown and "dropped by guardrails" in markdown


def test_same_command_same_numbers(
    bench, tiny_causal, tiny_causal_dir: Path, tmp_path: Path
) -> None:
    argv = ["--config", "tiny", "--model", str(tiny_causal_dir), "--searchers", "random"]
    argv += ["--seeds", "13"]
    first = bench.main([*argv, "--out", str(tmp_path / "a")], tiny_causal)
    second = bench.main([*argv, "--out", str(tmp_path / "b")], tiny_causal)
    keep = ("method", "test_accuracy", "ensemble_test_accuracy", "dev_examples_scored", "prompt")
    assert [{k: r.get(k) for k in keep} for r in first] == [
        {k: r.get(k) for k in keep} for r in second
    ]


def test_test_subset_is_fixed_and_inside_the_split(bench) -> None:
    from promptscout.tasks import load_task

    task = load_task("sst-5", seed=13)
    ids = bench.test_subset(task, 50)
    assert ids == bench.test_subset(load_task("sst-5", seed=87), 50)  # shared test file
    assert len(set(ids)) == 50 and set(ids) <= {e.id for e in task.test}
    assert bench.test_subset(task, 0) == [e.id for e in task.test]


def test_every_searcher_runs_with_its_benchmark_options(
    bench, tiny_causal, tiny_causal_dir: Path, tmp_path: Path
) -> None:
    """All seven searchers of the full comparison, with the options searcher_options gives them
    (the reduced sizes), run to a selected prompt at the shared budget; the white-box ones
    report the train examples they read."""
    from searcher_options import SEARCHERS as every  # on the path while `bench` is

    argv = ["--config", "tiny", "--model", str(tiny_causal_dir), "--seeds", "13"]
    argv += ["--searchers", ",".join(every), "--out", str(tmp_path)]
    rows = bench.main(argv, tiny_causal)
    by_method = {r["method"]: r for r in rows if r["kind"] == "searcher"}
    assert sorted(by_method) == sorted(every)
    for name, row in by_method.items():
        assert row["test_accuracy"] is not None, name
        assert 0 < row["dev_examples_scored"] <= 64, name
        white_box = name in ("autoprompt", "rl", "soft")
        assert (row["internal_train_reads"] > 0) == white_box, name
