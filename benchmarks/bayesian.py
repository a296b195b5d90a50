"""Bayesian search vs the hand-written zero-shot prompts it starts from, on SST-2.

Runs the campaign of examples/sst2-bayesian.toml on the embedded SmolLM2-135M-Instruct: a
`manual` searcher holding the campaign's hand-written zero-shot pool (2 templates x 2
instructions, the campaign's label words) and the `bayesian` searcher over the same pool plus
composed templates, label words per class and up to three demonstrations. Candidates are raced on
the 32 dev examples and ranked by dev cross-entropy (dev accuracy on 32 examples moves in
three-point steps and ties; picking the best of a few hundred candidates by it mostly picks
noise). Then it scores on the 1,821 test examples the campaign's best prompt and every
hand-written prompt, and compares the best found with the best hand-written prompt by *test*
accuracy: an oracle choice, the hardest baseline the pool offers. Run:

    .venv/bin/python benchmarks/bayesian.py [--seed 0] [--minutes 6] [--examples 4000]
                                            [--store runs/bayesian-bench.db]

About 15 minutes on 2 CPU cores (search 6, test scoring 6-9 depending on the winner's
demonstrations). Prints a table and writes benchmarks/results/bayesian.json. Acceptance: the best
found prompt beats the best hand-written zero-shot prompt by at least 3 points of test accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import bench_config, fmt, prompt_row, score_missing

from promptscout.campaign import Campaign
from promptscout.leaderboard import describe
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, create_searcher
from promptscout.store import Store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sst2-bayesian.toml"
RESULTS = Path(__file__).resolve().parent / "results" / "bayesian.json"
REQUIRED_GAIN = 0.03


def row(
    store: Store, name: str, prompt: Prompt, searcher: str, dev: list[str], test: list[str]
) -> dict[str, Any]:
    return prompt_row(store, name, prompt, dev, test, searcher=searcher)


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    config = bench_config(EXAMPLE, args, folder, "bayesian-bench")
    started = time.perf_counter()
    with Store(config.store_path) as store:
        campaign = Campaign(config, store)
        try:
            result = campaign.run()  # search, then the winner (top_k = 1) on test
            ran = time.perf_counter() - started
            dev_ids = store.get_meta("search_examples")
            test_ids = store.get_meta("holdout_examples")
            prompts = store.prompts()
            bayesian = next(s for s in campaign.searchers if s.type_name == "bayesian")
            manual_spec = next(s for s in config.searchers if s.type == "manual")
            context = SearchContext(campaign.task, campaign.task.label_words, 0)
            pool = create_searcher("manual", manual_spec.options, context).ask(10**6)
            best = result.leaderboard[0]
            front = bayesian.pareto_front()  # best first
            own_key = front[0] if front else best.prompt.key
            # Test scores for the pool and, when another searcher won, the bayesian's own best.
            wanted = [*pool, prompts[own_key][0]]
            score_missing(campaign.evaluator, store, wanted, "test", test_ids)
            trials = bayesian.study.get_trials(deepcopy=False)
        finally:
            campaign.close()
        rows = [row(store, "best found", best.prompt, best.searcher, dev_ids, test_ids)]
        if own_key != best.prompt.key:
            own, searcher = prompts[own_key]
            rows.append(row(store, "bayesian's best", own, searcher, dev_ids, test_ids))
        rows += [
            row(store, f"hand-written {i}", p, "manual", dev_ids, test_ids)
            for i, p in enumerate(pool, start=1)
        ]
    hand = rows[-len(pool) :]
    best_hand_test = max(r["test"]["accuracy"] for r in hand if r["test"])
    scored_dev = [r for r in hand if r["dev"]]
    best_hand_dev = min(scored_dev, key=lambda r: r["dev"]["cross_entropy"]) if scored_dev else None
    found_test = rows[0]["test"]["accuracy"]
    return {
        "campaign": str(EXAMPLE.relative_to(EXAMPLE.parents[1])),
        "seed": args.seed,
        "budget": {"examples": args.examples, "minutes": args.minutes},
        "search": {
            "stop_reason": result.stop_reason,
            "examples_scored": result.examples_scored,
            "seconds": round(ran, 1),  # the campaign: search and the winner on test
            "bayesian_trials": len(trials),
            "trial_states": dict(Counter(t.state.name for t in trials)),
        },
        "rows": rows,
        "best_found_test_accuracy": found_test,
        "best_hand_written_test_accuracy": best_hand_test,
        "hand_written_chosen_by_dev": best_hand_dev and best_hand_dev["test"],
        "gain": found_test - best_hand_test,
        "required_gain": REQUIRED_GAIN,
        "passed": found_test - best_hand_test >= REQUIRED_GAIN,
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_table(report: dict[str, Any]) -> None:
    search = report["search"]
    print(
        f"campaign: {search['examples_scored']} dev examples, {search['seconds']} s with the "
        f"winner's test score, "
        f"{search['bayesian_trials']} bayesian trials {search['trial_states']} "
        f"({search['stop_reason']})"
    )
    print(f"{'':16} {'searcher':9} {'dev CE':>7} {'dev acc':>7} {'test acc':>8}  prompt")
    for r in report["rows"]:
        prompt = describe(Prompt.from_dict(r["prompt"]), width=70)
        print(
            f"{r['name']:16} {r['searcher']:9} {fmt(r['dev'], 'cross_entropy'):>7} "
            f"{fmt(r['dev'], 'accuracy'):>7} {fmt(r['test'], 'accuracy'):>8}  {prompt}"
        )
    verdict = "PASS" if report["passed"] else "FAIL"
    print(
        f"best found {report['best_found_test_accuracy']:.4f} vs best hand-written "
        f"{report['best_hand_written_test_accuracy']:.4f} test accuracy: "
        f"{100 * report['gain']:+.1f} points (needs {100 * REQUIRED_GAIN:+.1f}): {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="bayesian search vs hand-written prompts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=6.0, help="search wall time")
    parser.add_argument("--examples", type=int, default=4000, help="dev examples to score")
    parser.add_argument("--store", default="", help="keep the campaign store here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, Path(tmp))
    print_table(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
