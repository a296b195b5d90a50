"""The default campaign on every bundled task: what a new user gets from a file that names only
its task, measured on held-out data no searcher saw.

For each task (split seed 42 by default): the campaign file is ``[campaign]`` and ``[task]``
alone, so the campaign runs the default mix (``promptscout/campaign/default.py``: ten minutes of
search, selection, ensembles), re-scoring its finalists on a seeded subset of the held-out split
(``holdout_limit``; fewer where the default's ``rescore_minutes`` buys fewer). Then, on the
test set of this benchmark (the whole test split, or a fixed seeded subset with
``--test-size``: Yahoo's 60,000 examples, DBpedia's 70,000 and AG News's 7,600 would take hours
here):

- the campaign's pick (what ``export`` ranks first: a prompt or an ensemble);
- what the search split alone would have picked (the candidate ranked first by dev without
  selection): the "before" of the selection change, from the same campaign;
- the best of three hand-written zero-shot prompts by dev (``benchmarks/searcher_options.py``),
  the baseline a user writes by hand.

Each pick's dev accuracy minus its test accuracy is its dev-to-held-out gap. The JSON (one file
per task in ``--out``) keeps every number, the prompts and the timings; the script prints a
markdown table. About 20 minutes per task on 2 CPU cores; run tasks one at a time with
``--tasks`` to spread it out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS
from searcher_options import PARTS

from promptscout.campaign import Campaign
from promptscout.config import load_config
from promptscout.ensemble import Ensemble
from promptscout.ensemble.finalize import score_ensemble
from promptscout.evaluation.cache import ScoreCache
from promptscout.evaluation.local import LocalEvaluator
from promptscout.leaderboard import build_leaderboard
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.store import Store

TASKS = ("sst-2", "mr", "sst-5", "agnews", "yahoo", "dbpedia")
HAND_WRITTEN = {
    **{name: PARTS[name].templates for name in PARTS},
    "yahoo": (
        "Question: {text}\nTopic:",
        "{text} This question is about",
        "Question: {text}\nWhich category is this question in? Answer:",
    ),
    "dbpedia": (
        "Text: {text}\nCategory:",
        "{text} This text is about a",
        "Article: {text}\nWhat kind of thing is this article about? Answer:",
    ),
}
# Seeded subsets where the whole split would take hours here; the others: the whole split.
DEFAULT_TEST_SIZE = {"yahoo": 2000, "agnews": 2000, "dbpedia": 2000}


def test_ids(task: Any, size: int) -> list[str]:
    """The benchmark's test examples: all, or a seeded subset of ``size``."""
    ids = [e.id for e in task.test]
    if 0 < size < len(ids):
        rng = np.random.default_rng(0)
        ids = [ids[i] for i in sorted(rng.choice(len(ids), size, replace=False).tolist())]
    return ids


def accuracy(
    evaluator: LocalEvaluator, task: Any, prompt: Any, split: str, ids: list[str]
) -> float:
    """Accuracy of a prompt or an ensemble on ``ids`` (the model's outputs come from the cache
    when the campaign's store already scored them)."""
    if isinstance(prompt, Ensemble):
        evaluation = score_ensemble(evaluator, task, evaluator.objectives, prompt, split, ids)
    else:
        (evaluation,) = evaluator.evaluate([prompt], split, ids)
    assert evaluation.ok, evaluation.error
    return float(evaluation.objectives["accuracy"])


def run_task(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    folder = out / "stores"
    folder.mkdir(parents=True, exist_ok=True)
    store_path = folder / f"default-{name}-{args.seed}.db"
    campaign_file = folder / f"default-{name}-{args.seed}.toml"
    rescore = args.rescore and store_path.exists()
    if store_path.exists() and not rescore:
        raise SystemExit(
            f"error: {store_path} exists; remove it, give another --out, or pass --rescore"
        )
    if not rescore:
        campaign_file.write_text(
            f'[campaign]\nname = "default-{name}"\nseed = {args.seed}\nstore = "{store_path}"\n'
            f'\n[task]\nname = "{name}"\nsplit_seed = {args.seed}\n'
            f"holdout_limit = {args.holdout}\n",
            encoding="utf-8",
        )
    config = load_config(campaign_file)
    if args.minutes is not None:
        config.budget.minutes = args.minutes
    with Store(store_path) as store:
        campaign = Campaign(config, store, progress=not args.quiet)
        try:
            # --rescore: the campaign finished before; only the test scoring below runs again.
            stop_reason = "finished before (--rescore)" if rescore else campaign.run().stop_reason
            model = campaign.model()
        finally:
            campaign.close()
        task = campaign.task
        board = build_leaderboard(store)
        before = build_leaderboard(store, ensembles=False, selection=False)[0]
        pick = board[0]
        selection = store.meta.selection
        searchers = [s.type for s in config.searchers]
        stats = {
            "examples_scored": store.examples_scored("dev"),
            "candidates": len(build_leaderboard(store, ensembles=False, selection=False)),
            "evaluations": store.count_evaluations(),
            "stop_reason": stop_reason,
        }
        campaign_seconds = store.seconds_spent()
    objectives = [resolve_objective("accuracy")]
    size = args.test_size if args.test_size is not None else DEFAULT_TEST_SIZE.get(name, 0)
    ids = test_ids(task, size)
    dev_ids = [e.id for e in task.dev]
    with Store(store_path) as store:  # its score cache saves what the campaign already scored
        evaluator = LocalEvaluator(
            model, task, objectives, cache=ScoreCache(store), soft_resolver=store.get_soft
        )
        scoring = time.perf_counter()
        hand = []
        for template in HAND_WRITTEN[name]:
            prompt = Prompt(template, task.label_words)
            hand.append((accuracy(evaluator, task, prompt, "dev", dev_ids), template, prompt))
        best_dev, _, best_prompt = max(hand, key=lambda h: h[0])
        # Dev accuracy as the leaderboard has it (a weighted ensemble's is cross-validated).
        rows = {
            "pick": (pick.prompt, pick.kind, pick.searcher, pick.dev["accuracy"]),
            "before": (before.prompt, before.kind, before.searcher, before.dev["accuracy"]),
            "hand_written": (best_prompt, "prompt", "hand-written", best_dev),
        }
        measured = {}
        for label, (prompt, kind, searcher, dev) in rows.items():
            test = accuracy(evaluator, task, prompt, "test", ids)
            measured[label] = {
                "kind": kind,
                "searcher": searcher,
                "prompt": prompt.to_dict(),
                "dev_accuracy": dev,
                "test_accuracy": test,
                "gap": dev - test,
            }
        measured["hand_written"]["all_dev"] = {t: round(a, 4) for a, t, _ in hand}
        scoring_seconds = time.perf_counter() - scoring
    report = {
        "task": name,
        "split_seed": args.seed,
        "test_examples": len(ids),
        "searchers": searchers,
        "campaign": stats,
        "selection": selection,
        "minutes_campaign": round(campaign_seconds / 60, 1),
        "minutes_test_scoring": round(scoring_seconds / 60, 1),
        **measured,
    }
    (out / f"default-{name}-{args.seed}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def table(reports: list[dict[str, Any]]) -> str:
    lines = [
        "| task | test examples | pick: test (dev) | before selection: test (dev) "
        "| best hand-written: test (dev) | pick vs hand-written | campaign min |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        cells = [r["task"], str(r["test_examples"])]
        for label in ("pick", "before", "hand_written"):
            m = r[label]
            cells.append(f"{m['test_accuracy']:.4f} ({m['dev_accuracy']:.4f})")
        diff = r["pick"]["test_accuracy"] - r["hand_written"]["test_accuracy"]
        cells += [f"{100 * diff:+.1f} points", str(r["minutes_campaign"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the default campaign on every bundled task")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seed", type=int, default=42, help="split seed = campaign seed")
    parser.add_argument("--minutes", type=float, default=None, help="search minutes (default 10)")
    parser.add_argument("--holdout", type=int, default=1000, help="the campaign's holdout_limit")
    parser.add_argument(
        "--test-size",
        type=int,
        default=None,
        help="0: whole split (default; not yahoo, agnews, dbpedia)",
    )
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="a task whose store exists: skip its (finished) campaign, score on test again",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for name in args.tasks.split(","):
        print(f"== {name}", file=sys.stderr, flush=True)
        reports.append(run_task(name, args, out))
        print(table(reports[-1:]), flush=True)
    print(table(reports))


if __name__ == "__main__":
    main()
