"""Every searcher at an equal budget on SST-2, MR, SST-5 and AG News, over few-shot split seeds.

For each task and split seed (``[task] split_seed``) it runs one campaign per searcher, the
searcher alone, on the embedded SmolLM2-135M-Instruct, all with the same search budget
(``[budget] examples``: ``dev_examples`` scored dev examples, the same for every task; the dev
splits hold 16 x classes examples) and with the split seed as campaign seed (so the standard
deviation over seeds holds both the split's and the searcher's own randomness), ranked by dev
cross-entropy (dev accuracy on 32-80 examples moves in steps of 1-3 points and ties), with the
top ``top_k`` re-scored on test and pooled by the leaderboard's ``average`` ensemble. Per
(task, method, seed) it records the test accuracy of the campaign's selected prompt (best by
dev) and of the ensemble, the dev examples scored (the budget's count), the white-box searchers'
internal train reads (reconstructed from their state: see ``internal_train_reads``) and the
wall time. Baselines, same test examples:

* hand-written: a fixed pool of three zero-shot templates per task with the task's default
  label words (``searcher_options.PARTS``), the one with the best dev cross-entropy (picked by
  dev, as a user would: all three scored on the whole dev split, no racing);
* ICL: that chosen prompt with 4 random training examples as demonstrations (numpy seed 0).

Test accuracy is measured on a fixed seeded subset of the test split (numpy seed 2024; the test
files are shared by all split seeds, so it is the same subset for every searcher, baseline and
seed), or on the whole split with ``--test-size 0``. Run (the model is loaded once; each campaign
has a temporary store; one in-memory score cache serves every campaign, so a text already
scored with the same label words, e.g. a hand-written prompt both a baseline and the manual
searcher score, is read from it: wall times of later rows can be lower for that reason):

    flock /tmp/promptscout-heavy.lock .venv/bin/python benchmarks/searchers.py --config small
    .venv/bin/python benchmarks/searchers.py --config full [--evaluator ray --workers 8
                                                           --address ray://HEAD:10001]

It prints a markdown table (with the command) and writes, under benchmarks/results/,
``searchers-<config>.csv`` (one row per task, method and seed), ``searchers-<config>-summary.csv``
(mean and standard deviation over seeds) and ``searchers-<config>.md``, rewritten after every
(seed, task) cell so an interrupted run keeps what it measured. Acceptance: on at least 3 of the
4 tasks the best searcher (by mean test accuracy of its selected prompt) beats both baselines.
Every budget counts examples, not minutes (the minutes are a safety cap whose binding shows in
the CSV's stop reason), so a re-run on the same machine scores the same prompts.

Arithmetic for ``--config small`` on 2 CPU cores, from a measured one-seed pilot (12 dev passes
per campaign, 200 test examples, manual + random + evolutionary + Bayesian: 14.6 minutes for the
seed). A black-box campaign costs ~35 s on SST-2/MR, ~60 s on SST-5 and ~100 s on AG News at
12 passes (news texts are twice as long), about half of it the two finalists' 400 test
scorings; the baselines ~130 s per seed in all. Three seeds of that are ~44 minutes, so the
small config:

* keeps the 4 tasks, 3 seeds (13, 42, 87), a 200-example test subset (one accuracy's standard
  error ~3 points; the subset is shared, so differences between rows are paired) and 2
  finalists;
* budgets 384 scored dev examples per campaign for every task (12 passes over SST-2/MR's 32,
  6 over AG News's 64, ~5 over SST-5's 80), which halves the SST-5 and AG News campaigns;
* runs the manual searcher (the hand-written pool with a second label-word list, cheap) and
  the pilot's two strongest searchers, evolutionary and Bayesian. random (the pilot's best on
  SST-5 and AG News, its worst on MR), autoprompt, rl and soft (each also trains on the train
  split for a minute or more per campaign) do not fit: ``--searchers
  manual,random,evolutionary,bayesian,autoprompt,rl,soft`` runs them at ``small``'s reduced
  iterations, ``--config full`` at their example campaigns';

~8.5 minutes per seed, ~26 minutes for three, plus model loading. A guard stops starting new
(seed, task) cells after 28 minutes (the output says which ran).

``--config full``: all 7 searchers, 2,000 scored dev examples per campaign, the whole test
splits (1,821 / 2,000 / 2,210 / 7,600), 3 finalists, the white-box searchers with their example
campaigns' iterations: 84 campaigns with ~7,000 test scorings each, some 200 CPU-hours of
scoring at this machine's rate: run it on a GPU machine (``--device cuda``) or a Ray cluster
(``--evaluator ray --workers N [--address ...]`` sets ``[evaluator] type = "ray"``: every
campaign scores on N model-holding actors; the driver still loads the model for the white-box
searchers' gradients and training).
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, benchmarks/ is on the path: the benchmarks' shared helpers.
from common import values  # objective values of a stored evaluation
from searcher_options import PARTS, SIZES, Size, internal_train_reads, searcher_options
from searcher_report import write_outputs

from promptscout.campaign import Campaign
from promptscout.config import CampaignConfig, parse_config
from promptscout.evaluation.base import Evaluator
from promptscout.evaluation.cache import ScoreCache
from promptscout.evaluation.local import LocalEvaluator
from promptscout.evaluation.ray_worker import MemoryBackend
from promptscout.leaderboard import build_leaderboard, describe
from promptscout.model import EMBEDDED_MODEL_NAME, LanguageModel, load_model
from promptscout.objectives import Objective
from promptscout.store import Store
from promptscout.tasks import Task, load_task

RESULTS = Path(__file__).resolve().parent / "results"
TEST_SUBSET_SEED = 2024
ICL_SEED = 0
ICL_DEMOS = 4
OBJECTIVES = ["cross_entropy", "accuracy"]


@dataclass
class Shared:
    """What every campaign of a run shares: the model (loaded on first use) and a score cache."""

    model: Callable[[], LanguageModel]
    cache: ScoreCache
    model_name: str
    evaluator: dict[str, Any]


class SharedModelCampaign(Campaign):
    """A campaign on the run's shared model: white-box searchers and the local evaluator use
    it (no model load per campaign), and the evaluator reads and fills the shared cache. With
    ``[evaluator] type = "ray"`` scoring stays on the campaign's Ray actors."""

    def __init__(self, config: CampaignConfig, store: Store, shared: Shared) -> None:
        self._shared = shared
        local = config.evaluator.type != "ray"
        factory = self._shared_evaluator if local else None
        super().__init__(config, store, evaluator_factory=factory, progress=False)

    def model(self) -> LanguageModel:
        return self._shared.model()

    def _shared_evaluator(
        self, task: Task, objectives: list[Objective], config: CampaignConfig, cache: Any
    ) -> Evaluator:
        return LocalEvaluator(
            self.model(),
            task,
            objectives,
            cache=self._shared.cache,
            soft_resolver=self.store.get_soft,
        )


def test_subset(task: Task, size: int) -> list[str]:
    """Ids of the fixed seeded test subset (all test ids, in order, when ``size`` is 0)."""
    ids = [e.id for e in task.test]
    if not size or size >= len(ids):
        return ids
    picked = np.random.default_rng(TEST_SUBSET_SEED).choice(len(ids), size=size, replace=False)
    return [ids[int(i)] for i in sorted(picked)]


def campaign_data(
    name: str,
    task: str,
    seed: int,
    searcher: dict[str, Any],
    shared: Shared,
    *,
    examples: int | None,
    minutes: float,
    top_k: int,
    racing: bool = True,
) -> dict[str, Any]:
    """A campaign file (as parsed TOML) for one searcher on one task and split seed."""
    data: dict[str, Any] = {
        "campaign": {"name": name, "seed": seed},
        "model": {"name": shared.model_name},
        "task": {"name": task, "split_seed": seed},
        "objective": {"name": OBJECTIVES},
        "budget": {"examples": examples, "minutes": minutes},
        "racing": {"enabled": racing},
        "evaluator": dict(shared.evaluator),
        "leaderboard": {"top_k": top_k, "ensembles": ["average"] if top_k > 1 else []},
        "searchers": [searcher],
    }
    if examples is None:
        del data["budget"]["examples"]
    return data


def run_campaign(
    data: dict[str, Any],
    folder: Path,
    test_ids: list[str],
    shared: Shared,
    after: Callable[[Campaign, Store], list[dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run one campaign in a temporary store; its selected prompt, ensemble, cost and time,
    plus whatever ``after`` measures with the open campaign (its evaluator)."""
    data = {**data, "campaign": {**data["campaign"], "store": str(folder / "campaign.db")}}
    config = parse_config(data)
    started = time.perf_counter()
    with Store(config.store_path) as store:
        campaign = SharedModelCampaign(config, store, shared)
        store.set_meta("holdout_examples", test_ids)  # finalists are re-scored on the subset
        try:
            result = campaign.run()
            seconds = time.perf_counter() - started
            searcher = campaign.searchers[0]
            internal = internal_train_reads(
                searcher.type_name, searcher.config, searcher.state(), len(campaign.task.train)
            )
            extra = after(campaign, store) if after else []
        finally:
            campaign.close()
    prompts = [e for e in result.leaderboard if e.kind == "prompt"]
    ensembles = [e for e in result.leaderboard if e.kind == "ensemble" and e.test]
    best = prompts[0] if prompts else None
    row = {
        "test_accuracy": best.test["accuracy"] if best and best.test else None,
        "ensemble_test_accuracy": ensembles[0].test["accuracy"] if ensembles else None,
        "dev_cross_entropy": best.dev["cross_entropy"] if best and best.dev else None,
        "dev_accuracy": best.dev["accuracy"] if best and best.dev else None,
        "dev_examples_scored": result.examples_scored,
        "internal_train_reads": internal,
        "candidates_ranked": len(prompts),
        "seconds": round(seconds, 1),
        "stop_reason": result.stop_reason,
        "prompt": describe(best.prompt, width=160) if best else "",
        **writer_costs(searcher.notes()),
    }
    return row, extra


def writer_costs(notes: dict[str, Any]) -> dict[str, Any]:
    """A writer's own model calls (apart from the search budget) and the share of its
    proposals the guardrails dropped; nothing for other searchers."""
    writing = notes.get("writing")
    if not writing:
        return {}
    proposals = writing["proposals"]
    return {
        "writer_answers": writing["writes"],
        "writer_tokens": writing["tokens"],
        "writer_seconds": round(writing["seconds"], 1),
        "feedback_examples": writing["feedback_examples"],
        "dropped_share": round(1 - writing["kept"] / proposals, 3) if proposals else None,
    }


def icl_rows(
    task_name: str, seed: int, test_ids: list[str]
) -> Callable[[Campaign, Store], list[dict[str, Any]]]:
    """After the hand-written baseline: its chosen prompt with random demonstrations, on test."""

    def measure(campaign: Campaign, store: Store) -> list[dict[str, Any]]:
        chosen = next(
            e for e in build_leaderboard(store, ensembles=False) if e.kind == "prompt"
        ).prompt
        train = campaign.task.train
        rng = np.random.default_rng(ICL_SEED)
        picked = rng.choice(len(train), size=min(ICL_DEMOS, len(train)), replace=False)
        prompt = replace(chosen, demos=tuple(train[int(i)].id for i in picked), separator="\n\n")
        started = time.perf_counter()
        (evaluation,) = campaign.evaluator.evaluate([prompt], "test", test_ids)
        store.add_evaluation(prompt, "icl", evaluation)
        test = values(store, prompt, "test", test_ids)
        return [
            {
                "task": task_name,
                "seed": seed,
                "method": f"ICL ({ICL_DEMOS} random demos)",
                "kind": "baseline",
                "test_accuracy": test["accuracy"] if test else None,
                "ensemble_test_accuracy": None,
                "dev_examples_scored": 0,
                "internal_train_reads": 0,
                "seconds": round(time.perf_counter() - started, 1),
                "stop_reason": "fixed prompt",
                "prompt": describe(prompt, width=160),
            }
        ]

    return measure


def run_cell(
    task_name: str, seed: int, size: Size, size_name: str, shared: Shared, folder: Path
) -> list[dict[str, Any]]:
    """Baselines and every searcher of ``size`` on one task and split seed."""
    task = load_task(task_name, seed=seed)
    test_ids = test_subset(task, size.test_size)
    common = {"task": task_name, "seed": seed, "test_examples": len(test_ids)}
    rows: list[dict[str, Any]] = []
    parts = PARTS[task_name]
    hand = {"type": "manual", "templates": list(parts.templates)}
    data = campaign_data(
        f"{task_name}-hand-{seed}", task_name, seed, hand, shared,
        examples=None, minutes=size.campaign_minutes, top_k=1, racing=False,
    )  # fmt: skip
    cell = folder / f"{task_name}-{seed}"
    (cell / "hand").mkdir(parents=True)
    row, extra = run_campaign(
        data, cell / "hand", test_ids, shared, icl_rows(task_name, seed, test_ids)
    )
    rows.append({**common, "method": "hand-written (best of 3 by dev)", "kind": "baseline", **row})
    rows += [{**common, **r} for r in extra]
    budget = size.dev_examples
    for name in size.searchers:
        spec = {"type": name, **searcher_options(name, task_name, size_name)}
        data = campaign_data(
            f"{task_name}-{name}-{seed}", task_name, seed, spec, shared,
            examples=budget, minutes=size.campaign_minutes, top_k=size.top_k,
        )  # fmt: skip
        (cell / name).mkdir()
        row, _ = run_campaign(data, cell / name, test_ids, shared)
        rows.append({**common, "method": name, "kind": "searcher", **row})
        print(
            f"  {task_name} seed {seed} {name}: test {row['test_accuracy']}, "
            f"ensemble {row['ensemble_test_accuracy']}, {row['seconds']} s",
            file=sys.stderr,
            flush=True,
        )
    return rows


def run(
    args: argparse.Namespace, out: Path, command: str, model: LanguageModel | None = None
) -> tuple[list[dict[str, Any]], str]:
    size = SIZES[args.config]
    if args.searchers:
        size = replace(size, searchers=tuple(args.searchers.split(",")))
    if args.seeds:
        size = replace(size, seeds=tuple(int(s) for s in args.seeds.split(",")))
    if args.test_size is not None:
        size = replace(size, test_size=args.test_size)
    if args.dev_examples is not None:
        size = replace(size, dev_examples=args.dev_examples)
    if args.tasks:
        size = replace(size, tasks=tuple(args.tasks.split(",")))
    evaluator: dict[str, Any] = {"type": args.evaluator}
    if args.evaluator == "ray":
        evaluator.update(workers=args.workers, address=args.address)
    provider = functools.cache(lambda: model or load_model(args.model, device=args.device))
    shared = Shared(provider, ScoreCache(MemoryBackend({})), args.model, evaluator)
    rows: list[dict[str, Any]] = []
    started, cells = time.perf_counter(), 0
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in size.seeds:  # seeds outermost: a stopped run has whole seeds first
            for task_name in size.tasks:
                elapsed = (time.perf_counter() - started) / 60
                per_cell = elapsed / cells if cells else 0.0
                if elapsed + per_cell > size.max_minutes:
                    notes.append(
                        f"time guard: stopped before {task_name} seed {seed} after {elapsed:.1f} "
                        f"min ({cells} cells done; limit {size.max_minutes} min)"
                    )
                    break
                rows += run_cell(task_name, seed, size, args.config, shared, Path(tmp))
                cells += 1
                seconds = time.perf_counter() - started
                write_outputs(rows, out, args.config, command, size, notes, seconds)
            if notes:
                break
    table = write_outputs(
        rows, out, args.config, command, size, notes, time.perf_counter() - started
    )
    return rows, table


def main(argv: list[str] | None = None, model: LanguageModel | None = None) -> list[dict[str, Any]]:
    """Parse the command line, run, print the markdown table; returns the per-seed rows.

    ``model``: an already loaded model to use instead of loading ``--model`` (which must name
    it: it is the campaigns' model name), as the smoke test does with the tiny model."""
    parser = argparse.ArgumentParser(description="every searcher at equal budgets, 4 tasks")
    parser.add_argument(
        "--config",
        choices=sorted(SIZES),
        default="small",
        help="small (default, ~26 min on 2 CPU cores), writers (the LLM writers beside "
        "bayesian, ~55 min) or full; tiny: the smoke test's",
    )
    parser.add_argument("--model", default=EMBEDDED_MODEL_NAME)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--tasks", default="", help="comma-separated (default: all four)")
    parser.add_argument("--searchers", default="", help="comma-separated (default: the config's)")
    parser.add_argument("--seeds", default="", help="comma-separated split seeds")
    parser.add_argument("--test-size", type=int, default=None, help="0: the whole test split")
    parser.add_argument(
        "--dev-examples", type=int, default=None, help="search budget in scored dev examples"
    )
    parser.add_argument("--evaluator", choices=["local", "ray"], default="local")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (--evaluator ray)")
    parser.add_argument("--address", default="", help="an existing Ray cluster (--evaluator ray)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the CSV and markdown")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    command = shlex.join([".venv/bin/python", "benchmarks/searchers.py", *argv])
    rows, table = run(args, Path(args.out), command, model)
    print(table)
    return rows


if __name__ == "__main__":
    main()
