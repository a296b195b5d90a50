"""Ensembles of the finalists vs the best single prompt, on SST-2 held-out data.

Runs the campaign of examples/sst2-mixed.toml on the embedded SmolLM2-135M-Instruct: manual,
random and Bayesian searchers (zero-shot) raced on the 32 dev examples and ranked by dev
cross-entropy; the top 4 are re-scored on the 1,821 test examples, then pooled from their stored
outputs (no further model calls) by probability averaging, majority vote and dev-fitted weights,
each also with contextual calibration, plus a calibrated row per finalist. Run:

    flock /tmp/promptscout-heavy.lock .venv/bin/python benchmarks/ensemble.py [--seed 0]
        [--minutes 3.5] [--store runs/ensemble-bench.db]

About nine minutes on 2 CPU cores. Prints the held-out rows and writes
benchmarks/results/ensemble.json. Acceptance: an ensemble row's test accuracy is at least the
best single prompt's (the best finalist by test accuracy, an oracle choice). It also reports
the ensemble an honest user would pick, the best ensemble row by dev, against the single prompt
the leaderboard ranks first by dev.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from common import bench_config

from promptscout.campaign import Campaign
from promptscout.leaderboard import LeaderboardEntry, build_leaderboard, describe
from promptscout.store import Store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sst2-mixed.toml"
RESULTS = Path(__file__).resolve().parent / "results" / "ensemble.json"


def row(entry: LeaderboardEntry) -> dict[str, Any]:
    return {
        "rank": entry.rank,
        "kind": entry.kind,
        "searcher": entry.searcher,
        "prompt": describe(entry.prompt, width=200),
        "dev": entry.dev,
        "test": entry.test,
        "test_accuracy_interval": (entry.test_interval or {}).get("accuracy"),
        "prompt_tokens": entry.prompt_tokens,
        "examples": entry.examples,
    }


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    config = bench_config(EXAMPLE, args, folder, "ensemble-bench")
    started = time.perf_counter()
    with Store(config.store_path) as store:
        campaign = Campaign(config, store)
        try:
            result = campaign.run()
        finally:
            campaign.close()
        seconds = time.perf_counter() - started
        held_out = [e for e in build_leaderboard(store) if e.test is not None]
        test_evaluations = sum(1 for _ in store.evaluations("test"))
    singles = [e for e in held_out if e.kind == "prompt"]
    ensembles = [e for e in held_out if e.kind == "ensemble"]
    best_single = max(singles, key=lambda e: e.test["accuracy"])
    best_ensemble = max(ensembles, key=lambda e: e.test["accuracy"])
    first_single = min(singles, key=lambda e: e.rank)  # the leaderboard's choice by dev
    first_ensemble = min(ensembles, key=lambda e: e.rank)
    by_searcher: dict[str, int] = {}
    for entry in result.leaderboard:
        if entry.kind == "prompt":
            by_searcher[entry.searcher] = by_searcher.get(entry.searcher, 0) + 1
    return {
        "campaign": str(EXAMPLE.relative_to(EXAMPLE.parents[1])),
        "seed": args.seed,
        "search": {
            "stop_reason": result.stop_reason,
            "examples_scored": result.examples_scored,
            "ranked_candidates_by_searcher": by_searcher,
        },
        "test_evaluations": test_evaluations,  # one per finalist: ensembles add no model calls
        "rows": [row(e) for e in held_out],
        "best_single_test_accuracy": best_single.test["accuracy"],
        "best_ensemble": row(best_ensemble),
        "dev_choice": {"single": row(first_single), "ensemble": row(first_ensemble)},
        "passed": best_ensemble.test["accuracy"] >= best_single.test["accuracy"],
        "seconds": round(seconds, 1),
    }


def fmt(values: dict[str, float] | None, name: str) -> str:
    return f"{values[name]:.4f}" if values else "-"


def print_table(report: dict[str, Any]) -> None:
    search = report["search"]
    print(
        f"campaign: {search['examples_scored']} dev examples ({search['stop_reason']}), "
        f"ranked candidates {search['ranked_candidates_by_searcher']}, {report['seconds']} s"
    )
    head = f"{'rank':>4} {'kind':8} {'dev CE':>7} {'dev acc':>7} {'test acc':>8} {'95% CI':>15}"
    print(head + "  what")
    for r in report["rows"]:
        ci = r["test_accuracy_interval"]
        interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        print(
            f"{r['rank']:>4} {r['kind']:8} {fmt(r['dev'], 'cross_entropy'):>7} "
            f"{fmt(r['dev'], 'accuracy'):>7} {fmt(r['test'], 'accuracy'):>8} {interval:>15}  "
            f"{r['prompt'][:90]}"
        )
    best = report["best_ensemble"]
    verdict = "PASS" if report["passed"] else "FAIL"
    print(
        f"best ensemble {best['test']['accuracy']:.4f} ({best['prompt'][:40]}) vs best single "
        f"prompt {report['best_single_test_accuracy']:.4f} test accuracy: {verdict}"
    )
    choice = report["dev_choice"]
    print(
        f"chosen by dev: ensemble {choice['ensemble']['test']['accuracy']:.4f} "
        f"({choice['ensemble']['prompt'][:40]}) vs single "
        f"{choice['single']['test']['accuracy']:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="ensembles vs the best single prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=3.5, help="search wall time")
    parser.add_argument("--store", default="", help="keep the campaign store here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, Path(tmp))
    print_table(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
