"""AutoPrompt trigger search vs plain hand-written prompts, on SST-2.

Runs the campaign of examples/sst2-autoprompt.toml on the embedded SmolLM2-135M-Instruct: the
`autoprompt` searcher alone, starting from `{text} [T][T][T][T][T]` (five "the" triggers) with
the label words terrible/great, its accepted swaps scored on the 32 dev examples, the winner
re-scored on the 1,821 test examples. Then it scores on test the plain hand-written prompts
`{text} It was` and `Review: {text}\\nSentiment:` (same label words) and checks that the exported
winner reproduces its test score through the command line:

    promptscout evaluate --prompt EXPORT.json --rank R --split test --json

Run:

    .venv/bin/python benchmarks/autoprompt.py [--seed 0] [--minutes 5] [--store PATH]
                                              [--no-export-check]

About 11 minutes on 2 CPU cores (search 5, the winner and the two hand-written prompts on test
4, the export check 2). Prints a table and writes benchmarks/results/autoprompt.json.
Acceptance: the found prompt's test accuracy is above the better hand-written prompt's, and the
exported prompt reproduces it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import bench_config, fmt, prompt_row, score_missing

from promptscout.campaign import Campaign
from promptscout.prompts import Prompt, fill_template
from promptscout.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sst2-autoprompt.toml"
RESULTS = Path(__file__).resolve().parent / "results" / "autoprompt.json"
HAND_WRITTEN = ["{text} It was", "Review: {text}\nSentiment:"]


def export_check(export: Path, key: str) -> dict[str, Any]:
    """Score the exported winner on test through the command line, in a fresh process."""
    entries = json.loads(export.read_text(encoding="utf-8"))["entries"]
    rank = next(
        i
        for i, e in enumerate(entries, start=1)
        if e.get("kind", "prompt") == "prompt" and Prompt.from_dict(e["prompt"]).key == key
    )
    command = [sys.executable, "-m", "promptscout", "evaluate", "--prompt", str(export)]
    command += ["--rank", str(rank), "--split", "test", "--json", "--quiet"]
    started = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result = json.loads(out)
    return {
        "command": " ".join(command[1:]),
        "accuracy": result["accuracy"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    config = bench_config(EXAMPLE, args, folder, "autoprompt-bench")
    started = time.perf_counter()
    with Store(config.store_path) as store:
        campaign = Campaign(config, store)
        try:
            result = campaign.run()  # search, then the winner (top_k = 1) on test
            ran = time.perf_counter() - started
            dev_ids = store.get_meta("search_examples")
            test_ids = store.get_meta("holdout_examples")
            searcher = campaign.searchers[0]
            best = result.leaderboard[0]
            words = campaign.task.label_words
            hand = [Prompt(t, words, metadata={"searcher": "hand-written"}) for t in HAND_WRITTEN]
            score_missing(campaign.evaluator, store, hand, "test", test_ids, "hand-written")
            history = searcher.history
        finally:
            campaign.close()
        rows = [
            prompt_row(store, name, prompt, dev_ids, test_ids)
            for name, prompt in [("found", best.prompt)]
            + [(f"hand-written {i}", p) for i, p in enumerate(hand, start=1)]
        ]
    found = rows[0]["test"]["accuracy"]
    best_hand = max(r["test"]["accuracy"] for r in rows[1:])
    report: dict[str, Any] = {
        "campaign": str(EXAMPLE.relative_to(ROOT)),
        "seed": args.seed,
        "budget": {"minutes": args.minutes},
        "search": {
            "stop_reason": result.stop_reason,
            "dev_examples_scored": result.examples_scored,
            "candidates": result.evaluations,
            "steps": len(history),
            "accepted_swaps": sum(h["accepted"] for h in history),
            "seconds": round(ran, 1),  # the campaign: search and the winner on test
        },
        "rows": rows,
        "found_test_accuracy": found,
        "best_hand_written_test_accuracy": best_hand,
        "gain": found - best_hand,
        "passed": found > best_hand,
    }
    if args.export_check:
        check = export_check(config.export_path, best.prompt.key)
        check["reproduced"] = abs(check["accuracy"] - found) < 1e-9
        report["export_check"] = check
        report["passed"] = report["passed"] and check["reproduced"]
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def shown(prompt: Prompt) -> str:
    """The template with its triggers filled in and its fields kept, and the label words."""
    fields = {f: "{" + f + "}" for f in prompt.fields}
    text = fill_template(prompt.template, fields, prompt.triggers)
    return f"{text!r} [{'/'.join(prompt.label_words)}]"


def print_table(report: dict[str, Any]) -> None:
    search = report["search"]
    print(
        f"campaign: {search['steps']} search steps, {search['accepted_swaps']} swaps accepted, "
        f"{search['candidates']} evaluations, {search['seconds']} s with the winner's test "
        f"score ({search['stop_reason']})"
    )
    print(f"{'':15} {'dev acc':>7} {'dev CE':>7} {'test acc':>8}  prompt")
    for r in report["rows"]:
        prompt = shown(Prompt.from_dict(r["prompt"]))
        print(
            f"{r['name']:15} {fmt(r['dev'], 'accuracy'):>7} {fmt(r['dev'], 'cross_entropy'):>7} "
            f"{fmt(r['test'], 'accuracy'):>8}  {prompt}"
        )
    if "export_check" in report:
        check = report["export_check"]
        print(
            f"export check: `{check['command']}` -> test accuracy {check['accuracy']:.4f} "
            f"({'reproduced' if check['reproduced'] else 'NOT reproduced'}, {check['seconds']} s)"
        )
    print(
        f"found {report['found_test_accuracy']:.4f} vs best hand-written "
        f"{report['best_hand_written_test_accuracy']:.4f} test accuracy "
        f"({100 * report['gain']:+.1f} points), {report['seconds']} s in all: "
        f"{'PASS' if report['passed'] else 'FAIL'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="autoprompt vs hand-written prompts on SST-2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=5.0, help="search wall time")
    parser.add_argument("--store", default="", help="keep the campaign store here")
    parser.add_argument(
        "--no-export-check", dest="export_check", action="store_false",
        help="skip re-scoring the exported winner through the command line",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, Path(tmp))
    print_table(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
