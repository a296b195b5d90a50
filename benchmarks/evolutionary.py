"""Evolutionary search vs its own first generation, on SST-2 or MR.

Runs examples/sst2-evolutionary.toml (or mr-evolutionary.toml) on the embedded
SmolLM2-135M-Instruct: the `evolutionary` searcher alone, its first generation eight zero-shot
prompts drawn from the pools, then generations bred by the GA (or DE) that add demonstrations,
change label words, cues and field labels, and edit instructions. Offspring are raced on the 32
dev examples and ranked by dev cross-entropy. Then it scores on the test split (which no
searcher saw) the campaign's winner and every member of the first generation, and compares the
winner with

* the initial member the campaign would have selected: the best first-generation member by dev
  cross-entropy (the acceptance baseline), and
* the oracle initial member: the best first-generation member by *test* accuracy (reported
  with ``--oracle``; without it, the best of those scored on test).

Run (under the heavy-job lock on a shared machine):

    .venv/bin/python benchmarks/evolutionary.py --task sst-2 [--algorithm ga] [--seed 0]
                                                [--minutes 5] [--examples 3000] [--store PATH]
                                                [--oracle]
    .venv/bin/python benchmarks/evolutionary.py --task mr

About 10 minutes each on 2 CPU cores (search 5, test scoring of the winner and the
dev-selected first-generation member the rest; ``--oracle`` scores the whole first generation on
test as well, about 10 minutes more). Prints a
table and writes benchmarks/results/evolutionary-<task>.json. Acceptance: the winner's test
accuracy beats the dev-selected first-generation member's by at least 3 points.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from common import bench_config, fmt, prompt_row, score_missing, values

from promptscout.campaign import Campaign
from promptscout.leaderboard import describe
from promptscout.prompts import Prompt
from promptscout.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"sst-2": "sst2-evolutionary.toml", "mr": "mr-evolutionary.toml"}
REQUIRED_GAIN = 0.03


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    example = ROOT / "examples" / EXAMPLES[args.task]
    config = bench_config(example, args, folder, "evolutionary-bench")
    config.searchers[0].options["algorithm"] = args.algorithm
    started = time.perf_counter()
    with Store(config.store_path) as store:
        campaign = Campaign(config, store)
        try:
            result = campaign.run()  # search, then the winner (top_k = 1) on test
            searched = time.perf_counter() - started
            dev_ids = store.get_meta("search_examples")
            test_ids = store.get_meta("holdout_examples")
            prompts = store.prompts()
            searcher = campaign.searchers[0]
            first = [prompts[key][0] for key in searcher.history[0]["keys"]]
            winner = result.leaderboard[0].prompt
            # The campaign's own pick among the first generation: the best by dev cross-entropy
            # of those scored on the whole dev split (racing stops the rest early).
            dev_ce = {p.key: values(store, p, "dev", dev_ids) for p in first}
            full = [p for p in first if dev_ce[p.key]]
            chosen_prompt = min(full, key=lambda p: dev_ce[p.key]["cross_entropy"])
            wanted = first if args.oracle else [chosen_prompt]
            score_missing(campaign.evaluator, store, wanted, "test", test_ids)
        finally:
            campaign.close()

        def row(name: str, prompt: Prompt) -> dict[str, Any]:
            return prompt_row(store, name, prompt, dev_ids, test_ids)

        rows = [row("winner", winner)] + [row(f"initial {i}", p) for i, p in enumerate(first, 1)]
    initial = rows[1:]
    chosen = next(r for r in initial if r["key"] == chosen_prompt.key)
    tested = [r for r in initial if r["test"]]
    oracle = max(tested, key=lambda r: r["test"]["accuracy"])  # only `chosen` without --oracle
    found = rows[0]["test"]["accuracy"]
    chosen_test = chosen["test"]["accuracy"]
    gain = found - chosen_test
    return {
        "campaign": str(example.relative_to(ROOT)),
        "task": args.task,
        "algorithm": args.algorithm,
        "seed": args.seed,
        "budget": {"examples": args.examples, "minutes": args.minutes},
        "search": {
            "stop_reason": result.stop_reason,
            "examples_scored": result.examples_scored,
            "seconds": round(searched, 1),  # the campaign: search and the winner on test
            "generations": searcher.generation,
            "history": [{k: v for k, v in h.items() if k != "keys"} for h in searcher.history],
            "lm": searcher.lm.stats if searcher.lm is not None else None,
        },
        "rows": rows,
        "winner_test_accuracy": found,
        "dev_selected_initial": {"name": chosen["name"], "test_accuracy": chosen_test},
        "oracle_initial": {"name": oracle["name"], "test_accuracy": oracle["test"]["accuracy"]},
        "gain": gain,
        "gain_over_oracle": found - oracle["test"]["accuracy"],
        "required_gain": REQUIRED_GAIN,
        "passed": gain >= REQUIRED_GAIN,
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_table(report: dict[str, Any]) -> None:
    search = report["search"]
    print(
        f"{report['task']} {report['algorithm']}: {search['examples_scored']} dev examples, "
        f"{search['generations']} generations, {search['seconds']} s with the winner's test "
        f"score ({search['stop_reason']}); {report['seconds']} s in all"
    )
    print(f"{'':10} {'dev CE':>7} {'dev acc':>7} {'test acc':>8}  prompt")
    for r in report["rows"]:
        prompt = describe(Prompt.from_dict(r["prompt"]), width=80)
        print(
            f"{r['name']:10} {fmt(r['dev'], 'cross_entropy'):>7} {fmt(r['dev'], 'accuracy'):>7} "
            f"{fmt(r['test'], 'accuracy'):>8}  {prompt}"
        )
    chosen, oracle = report["dev_selected_initial"], report["oracle_initial"]
    verdict = "PASS" if report["passed"] else "FAIL"
    print(
        f"winner {report['winner_test_accuracy']:.4f} vs dev-selected initial ({chosen['name']}) "
        f"{chosen['test_accuracy']:.4f}: {100 * report['gain']:+.1f} points (needs "
        f"{100 * REQUIRED_GAIN:+.1f}): {verdict}; vs oracle initial ({oracle['name']}) "
        f"{oracle['test_accuracy']:.4f}: {100 * report['gain_over_oracle']:+.1f} points"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="evolutionary search vs its first generation")
    parser.add_argument("--task", choices=sorted(EXAMPLES), default="sst-2")
    parser.add_argument("--algorithm", choices=["ga", "de"], default="ga")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=5.0, help="search wall time")
    parser.add_argument("--examples", type=int, default=3000, help="dev examples to score")
    parser.add_argument("--store", default="", help="keep the campaign store here")
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="also score every first-generation member on test (the oracle baseline; slower)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, Path(tmp))
    print_table(report)
    out = ROOT / "benchmarks" / "results" / f"evolutionary-{args.task}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
