"""The parametric methods one by one: prompt tuning, prefix tuning, P-tuning and LoRA (the
``peft`` searcher), the older ``soft`` searcher and the best hand-written prompt, on SST-2 and
MR, per split seed.

For each task and split seed, each method trains on the 32 training examples the way a campaign
runs it: one proposal per epoch, scored on the 32 dev examples, early stopping on the dev
cross-entropy (patience 3, at most ``--epochs`` epochs: the same training budget for every
method); the searcher's own best (by dev cross-entropy) is then scored on the test examples.
With ``members=k`` (a committee of adapters trained side by side) the mean of the members'
best proposals is scored, as a campaign pools them, and each member on its own too.
Every method uses the template ``Review: {text}\\nSentiment:`` with negative/positive, or
``--template`` (e.g. the default campaign's generic ``Text: {text}\\nLabel:``), or with
``--generic-templates`` the default campaign's three generic templates as the option
``templates`` (e.g. with ``template_choice="per_member"``: one per committee member). With
``--min-train N`` dev examples move into train until it has N (the ``[task]`` table's
``min_train``; the methods then early-stop on the rest of dev). ``--per-round`` also scores
every proposal on the test examples, a diagnostic of early stopping (``rounds`` in the JSON;
nothing is chosen by it). The
hand-written baseline is the best of three zero-shot templates by dev
(``benchmarks/searcher_options.py``), scored on the same test examples.

Each method runs in a subprocess of its own, so that its peak resident memory (``ru_maxrss``,
the model included) is its own. Test examples: a seeded subset of ``--test-size`` (0: the whole
split). Run:

    .venv/bin/python benchmarks/peft_methods.py [--tasks sst-2,mr] [--seeds 13,42,87]
        [--methods prompt_tuning,prefix_tuning,p_tuning,lora,soft] [--epochs 12]
        [--test-size 600] [--template "Review: {text}\\nSentiment:" | --generic-templates]
        [--min-train 54]
        [--per-round] [--out benchmarks/results/peft-methods]

A method may carry option overrides: ``--methods "lora@learning_rate=0.001@patience=5"``.

Writes ``--out``/<task>-<seed>-<method>.json per run (a finished run is
not run again) and prints a markdown table of test accuracy (mean and spread over seeds),
training seconds and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS

TEMPLATE = "Review: {text}\nSentiment:"
METHODS = ("prompt_tuning", "prefix_tuning", "p_tuning", "lora", "soft")
OUT = RESULTS / "peft-methods"


def searcher_options(
    method: str, epochs: int, template: str = TEMPLATE
) -> tuple[str, dict[str, Any]]:
    """(searcher type, options) of a method, at the same training budget. A method may carry
    option overrides, each after an ``@``: ``lora@learning_rate=0.001@patience=5`` (values as
    JSON, or a bare word as a string: ``template_choice=per_member``; ``--methods`` is
    comma-separated)."""
    name, *overrides = method.split("@")
    options: dict[str, Any] = {"template": template, "max_epochs": epochs, "patience": 3}
    for item in overrides:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:  # a bare word is a string: template_choice=per_member
            options[key] = value
    if name == "soft":
        return "soft", options
    return "peft", {"method": name, **options}


def benchmark_task(task_name: str, seed: int, min_train: int) -> Any:
    """The bundled task at a split seed, as a campaign with ``[task] min_train`` loads it."""
    from promptscout.sections import TaskConfig

    return TaskConfig(name=task_name, split_seed=seed, min_train=min_train).load()


def run_one(task_name: str, seed: int, method: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one method on one split seed; its pick's dev and test numbers."""
    from default_campaign import test_ids

    from promptscout.campaign.default import generic_templates
    from promptscout.ensemble import Ensemble
    from promptscout.ensemble.finalize import pooled_evaluation
    from promptscout.evaluation.local import LocalEvaluator
    from promptscout.model import load_model
    from promptscout.objectives import resolve_objective
    from promptscout.searchers import SearchContext, create_searcher

    model = load_model("smollm2-135m-instruct")
    task = benchmark_task(task_name, seed, args.min_train)
    bundles: dict[str, Any] = {}
    objectives = [resolve_objective("cross_entropy"), resolve_objective("accuracy")]
    evaluator = LocalEvaluator(model, task, objectives, soft_resolver=bundles.get)
    context = SearchContext(task, task.label_words, seed, model_provider=lambda: model)
    kind, options = searcher_options(method, args.epochs, args.template)
    if args.generic_templates:
        del options["template"]
        options["templates"] = generic_templates(task)
    searcher = create_searcher(kind, options, context)
    train_seconds, proposals, by_key, start = 0.0, {}, {}, time.time()
    ids, rounds = test_ids(task, args.test_size), []
    while not searcher.exhausted:
        tick = time.time()
        prompts = searcher.propose(1)
        train_seconds += time.time() - tick
        if not prompts:
            break
        for prompt in prompts:
            bundles[prompt.soft] = searcher.soft_tensors(prompt.soft)
            proposals[prompt.soft] = prompt
            by_key[prompt.key] = prompt
        evaluations = evaluator.evaluate(prompts, "dev")
        searcher.tell([context.outcome(p, e) for p, e in zip(prompts, evaluations, strict=True)])
        if args.per_round:  # a diagnostic of early stopping: test never chooses anything
            tests = evaluator.evaluate(prompts, "test", ids)
            for prompt, dev_eval, test_eval in zip(prompts, evaluations, tests, strict=True):
                rounds.append(
                    {
                        "epoch": prompt.metadata["epoch"],
                        "member": prompt.metadata.get("member"),
                        "dev": dev_eval.objectives,
                        "test": test_eval.objectives,
                    }
                )
    # A committee (members = k) pools its members' best proposals; one adapter, or a
    # cross-fitted committee (one prompt), is its own best proposal.
    pooled = bool(searcher.committee())
    members = searcher.members if pooled else [searcher]
    if pooled:
        best: Any = Ensemble("average", tuple(by_key[k] for k in searcher.committee()))
        dev = pooled_evaluation(task, objectives, best, evaluator.evaluate(best.members, "dev"))
        tick = time.time()
        tests = evaluator.evaluate(best.members, "test", ids)
        test = pooled_evaluation(task, objectives, best, tests)
        member_tests = [t.objectives["accuracy"] for t in tests]
        numbers = best.members[0].metadata.get("trained_numbers")
    else:
        best = proposals[searcher.best["digest"]]
        (dev,) = evaluator.evaluate([best], "dev")
        tick = time.time()
        (test,) = evaluator.evaluate([best], "test", ids)
        member_tests, numbers = [], best.metadata.get("trained_numbers")
    return {
        "task": task_name,
        "seed": seed,
        "method": method,
        "epochs": max(m.epoch for m in members),
        "best_epoch": max(m.best["epoch"] for m in members),
        "train_seconds": round(train_seconds, 1),
        "campaign_seconds": round(time.time() - start, 1),
        "test_seconds": round(time.time() - tick, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dev_accuracy": dev.objectives["accuracy"],
        "test_accuracy": test.objectives["accuracy"],
        **({"member_test_accuracy": member_tests} if member_tests else {}),
        **({"rounds": rounds} if rounds else {}),
        "test_examples": len(ids),
        "trained_numbers": numbers,
        "load": [round(x, 2) for x in os.getloadavg()],
        "options": options,
    }


def hand_written(task_name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """The best of the three hand-written zero-shot prompts by dev, on the test examples."""
    from default_campaign import test_ids
    from searcher_options import PARTS

    from promptscout.evaluation.local import LocalEvaluator
    from promptscout.model import load_model
    from promptscout.objectives import resolve_objective
    from promptscout.prompts import Prompt

    model = load_model("smollm2-135m-instruct")
    task = benchmark_task(task_name, seed, args.min_train)
    evaluator = LocalEvaluator(model, task, [resolve_objective("accuracy")])
    prompts = [Prompt(t, task.label_words) for t in PARTS[task_name].templates]
    devs = evaluator.evaluate(prompts, "dev")
    best = max(range(len(prompts)), key=lambda i: devs[i].objectives["accuracy"])
    ids = test_ids(task, args.test_size)
    (test,) = evaluator.evaluate([prompts[best]], "test", ids)
    return {
        "task": task_name,
        "seed": seed,
        "method": "hand-written",
        "template": prompts[best].template,
        "dev_accuracy": devs[best].objectives["accuracy"],
        "test_accuracy": test.objectives["accuracy"],
        "test_examples": len(ids),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Test accuracy mean ± spread over seeds per task and method, with time and memory."""
    lines = [
        "| task | method | test accuracy (mean ± sd) | seeds | train s (mean) | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["method"]), []).append(row)
    for (task, method), group in sorted(groups.items()):
        accs = [r["test_accuracy"] for r in group]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        seeds = ",".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"]))
        train = [r["train_seconds"] for r in group if "train_seconds" in r]
        rss = [r["peak_rss_mib"] for r in group if "peak_rss_mib" in r]
        lines.append(
            f"| {task} | {method} | {statistics.mean(accs):.4f} ± {sd:.4f} | {seeds} | "
            + (f"{statistics.mean(train):.0f} | {max(rss):.0f} |" if train else "- | - |")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the parametric methods one by one")
    parser.add_argument("--tasks", default="sst-2,mr")
    parser.add_argument("--seeds", default="13,42,87")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epochs", type=int, default=12, help="at most this many epochs")
    parser.add_argument("--test-size", type=int, default=600, help="0: the whole test split")
    parser.add_argument(
        "--template",
        default=TEMPLATE,
        type=lambda text: text.replace("\\n", "\n"),  # a shell's "\n" is a line break
        help="the template every method trains (give each its own --out)",
    )
    parser.add_argument(
        "--generic-templates",
        action="store_true",
        help="train the default campaign's three generic templates (the option templates; "
        "with template_choice the method chooses one, or each member trains one) instead of "
        "--template (give it its own --out)",
    )
    parser.add_argument(
        "--min-train",
        type=int,
        default=0,
        help="move dev examples into train until it has this many (give it its own --out)",
    )
    parser.add_argument(
        "--per-round",
        action="store_true",
        help="also score every proposal on the test examples (how early stopping chose; give "
        "it its own --out)",
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help="the folder of per-run JSON (one per test size)"
    )
    parser.add_argument(
        "--one", nargs=3, metavar=("TASK", "SEED", "METHOD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:  # a child: one run, its JSON on stdout
        task, seed, method = args.one[0], int(args.one[1]), args.one[2]
        if method == "hand-written":
            print(json.dumps(hand_written(task, seed, args)))
        else:
            print(json.dumps(run_one(task, seed, method, args)))
        return
    rows = []
    for task in args.tasks.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for method in ["hand-written", *args.methods.split(",")]:
                path = args.out / f"{task}-{seed}-{method}.json"
                if not path.exists():
                    print(f"== {task} seed {seed} {method}", file=sys.stderr, flush=True)
                    child = [sys.executable, __file__, "--one", task, str(seed), method]
                    child += ["--epochs", str(args.epochs), "--test-size", str(args.test_size)]
                    child += ["--template", args.template, "--min-train", str(args.min_train)]
                    child += ["--per-round"] if args.per_round else []
                    child += ["--generic-templates"] if args.generic_templates else []
                    done = subprocess.run(child, capture_output=True, text=True, check=False)
                    if done.returncode != 0:
                        print(done.stderr[-3000:], file=sys.stderr)
                        raise SystemExit(f"run {task} {seed} {method} failed")
                    path.write_text(done.stdout.strip().splitlines()[-1] + "\n")
                rows.append(json.loads(path.read_text()))
                print(table([rows[-1]]).splitlines()[-1], flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
