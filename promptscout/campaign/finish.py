"""The end of a campaign: the finalists re-scored on the held-out split, their intervals and
ensembles, and the export file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from tqdm.auto import tqdm

from promptscout.builders import write_export
from promptscout.campaign.selection import prefer_ensemble, select
from promptscout.config import CampaignConfig
from promptscout.ensemble.finalize import finalize_ensembles
from promptscout.evaluation.base import Evaluator
from promptscout.evaluation.racing import PairedComparison
from promptscout.leaderboard import build_leaderboard
from promptscout.objectives import Objective
from promptscout.prompts import Prompt
from promptscout.store import Store
from promptscout.tasks import Task


def rescore_finalists(
    store: Store,
    evaluator: Callable[[], Evaluator],
    top_k: int,
    progress: bool,
    log: Callable[[str], None],
) -> None:
    """Score the ``top_k`` candidates by the search split on the held-out split (those not
    scored there yet), storing each evaluation as it arrives."""
    meta = store.meta
    holdout_ids = meta.holdout_examples
    leaders = build_leaderboard(store, top=top_k, ensembles=False) if top_k > 0 else []
    finalists = [e for e in leaders if e.test is None]
    if not finalists or not holdout_ids:
        return
    prompts = [e.prompt for e in finalists]
    searchers = {e.prompt.key: e.searcher for e in finalists}
    by_key = {p.key: p for p in prompts}
    split = meta.holdout_split
    log(f"re-scoring the top {len(prompts)} on {split} ({len(holdout_ids)} held-out examples each)")
    with tqdm(
        total=len(prompts) * len(holdout_ids),
        unit="ex",
        desc=split,
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for evaluation in evaluator().iter_evaluate(
            prompts, split, holdout_ids, progress=bar.update
        ):
            key = evaluation.prompt_key
            store.add_evaluation(by_key[key], searchers[key], evaluation)


def finish(
    store: Store,
    config: CampaignConfig,
    task: Task,
    objectives: Sequence[Objective],
    evaluator: Callable[[], Evaluator],
    progress: bool,
    log: Callable[[str], None],
    comparison: PairedComparison,
    trained_on_train: Callable[[Prompt, str], bool],
) -> None:
    """Select the pick, re-score the finalists, store their intervals and the ensemble rows
    (an ensemble may become the pick), write the export.

    ``evaluator`` is called only if something needs scoring (a resumed, finished campaign has
    everything in its store)."""
    options, choosing = config.leaderboard, config.selection
    if choosing.pool:
        # Without validation every candidate counts as trained on train: none is scored there.
        trained = (lambda *_: True) if not choosing.validation else trained_on_train
        select(store, task, comparison, evaluator, choosing.pool, trained, log)
    rescore_finalists(store, evaluator, options.top_k, progress, log)
    finalists = (
        build_leaderboard(store, top=options.top_k, ensembles=False) if options.top_k else []
    )
    n_ensembles = finalize_ensembles(
        store,
        task,
        objectives,
        evaluator,  # content-free inputs of calibrated rows
        [(e.prompt, e.searcher) for e in finalists],
        methods=options.ensembles,
        size=options.ensemble_size,
        calibrate=options.calibrate,
        log=log,
    )
    if choosing.pool:
        prefer_ensemble(store, task, comparison, choosing.z, log)
    # The export's rows: every finalist, plus as many rows as there are ensembles (those that
    # rank among them on dev).
    write_export(store, config.export_path, (options.top_k + n_ensembles) or None)
