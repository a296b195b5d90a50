"""Nearest-neighbour demonstrations against fixed ones and none, prompt by prompt.

For each task and each of its three hand-written templates (``benchmarks/default_campaign.py``):
the template zero-shot, with ``k`` fixed demonstrations (a class-balanced seeded draw from the
training split, the same for every input: what the searchers' demonstration slots hold), and
with each input's ``k`` nearest training examples (``nearest_demos = k``). Accuracy on dev and
on a seeded test subset that no choice here looked at; the mean over the templates is the
method's gain where it is used as the searchers use it: one option among the prompt's parts.

    .venv/bin/python benchmarks/nearest_demos.py --tasks agnews,sst-5 --k 2 --test-size 500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS
from default_campaign import HAND_WRITTEN, test_ids

from promptscout.evaluation.local import LocalEvaluator
from promptscout.model import load_model
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.tasks import Task, load_task


def fixed_demos(task: Task, k: int, seed: int) -> tuple[str, ...]:
    """``k`` training example ids, classes in turn, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    by_class: dict[Any, list[str]] = {}
    for example in task.train:
        by_class.setdefault(example.label, []).append(example.id)
    pools = [list(rng.permutation(ids)) for _, ids in sorted(by_class.items())]
    order = [int(i) for i in rng.permutation(len(pools))]
    return tuple(str(pools[order[i % len(pools)]][i // len(pools)]) for i in range(k))


def run_task(name: str, args: argparse.Namespace, model: Any, save: Any = None) -> dict[str, Any]:
    task = load_task(name, seed=args.seed)
    evaluator = LocalEvaluator(model, task, [resolve_objective("accuracy")])
    ids = test_ids(task, args.test_size)
    rows = []
    for template in HAND_WRITTEN[name]:
        variants = {
            "zero-shot": Prompt(template, task.label_words),
            "fixed": Prompt(template, task.label_words, demos=fixed_demos(task, args.k, args.seed)),
            "nearest": Prompt(template, task.label_words, nearest_demos=args.k),
        }
        for label, prompt in variants.items():
            started = time.perf_counter()
            (dev,) = evaluator.evaluate([prompt], "dev")
            (test,) = evaluator.evaluate([prompt], "test", ids)
            assert dev.ok and test.ok, dev.error or test.error
            rows.append(
                {
                    "template": template,
                    "demos": label,
                    "dev": dev.objectives["accuracy"],
                    "test": test.objectives["accuracy"],
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(f"{name} {label:9} dev {rows[-1]['dev']:.4f} test {rows[-1]['test']:.4f} "
                  f"{template!r}", flush=True)  # fmt: skip
        if save is not None:  # what is measured so far survives an interrupted run
            save(_report(name, args, ids, rows))
    return _report(name, args, ids, rows)


def _report(name: str, args: argparse.Namespace, ids: list[str], rows: list[dict]) -> dict:
    mean = {
        label: {
            split: float(np.mean([r[split] for r in rows if r["demos"] == label]))
            for split in ("dev", "test")
        }
        for label in ("zero-shot", "fixed", "nearest")
        if any(r["demos"] == label for r in rows)
    }
    return {"task": name, "split_seed": args.seed, "k": args.k, "test_examples": len(ids),
            "rows": rows, "mean": mean}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="agnews")
    parser.add_argument("--k", type=int, default=2, help="demonstrations per prompt")
    parser.add_argument("--seed", type=int, default=42, help="split seed (and the fixed draw)")
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--out", default=str(RESULTS / "nearest_demos.json"))
    args = parser.parse_args()
    model = load_model("smollm2-135m-instruct")
    reports: list[dict[str, Any]] = []

    def save(partial: dict[str, Any]) -> None:
        done = [*reports, partial]
        Path(args.out).write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")

    for name in args.tasks.split(","):
        reports.append(run_task(name, args, model, save))
    Path(args.out).write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    print("| task | zero-shot: test (dev) | fixed demos | nearest demos | nearest - fixed |")
    print("|---|---|---|---|---|")
    for r in reports:
        m = r["mean"]
        cells = [
            f"{m[x]['test']:.4f} ({m[x]['dev']:.4f})" for x in ("zero-shot", "fixed", "nearest")
        ]
        gain = 100 * (m["nearest"]["test"] - m["fixed"]["test"])
        print(f"| {r['task']} | " + " | ".join(cells) + f" | {gain:+.1f} points |")


if __name__ == "__main__":
    main()
