"""The end of a campaign: the finalists re-scored on the held-out split, their intervals and
ensembles, and the export file."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from promptscout.builders import write_export
from promptscout.campaign.rescore import rescore_finalists, score_missing
from promptscout.campaign.selection import prefer_committee, prefer_ensemble, select
from promptscout.config import CampaignConfig
from promptscout.ensemble.finalize import finalize_ensembles
from promptscout.evaluation.base import Evaluator
from promptscout.evaluation.racing import PairedComparison
from promptscout.leaderboard import build_leaderboard
from promptscout.objectives import Objective
from promptscout.prompts import Prompt
from promptscout.store import Store
from promptscout.tasks import Task


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
    committees: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Select the pick, re-score the finalists, store their intervals and the ensemble rows
    (an ensemble or a committee may become the pick), write the export.

    ``committees`` are the searchers' :meth:`~promptscout.searchers.base.Searcher.committee`
    keys by searcher name: each becomes an ``average`` row, its members scored wherever the
    finalists are.
    ``evaluator`` is called only if something needs scoring (a resumed, finished campaign has
    everything in its store)."""
    options, choosing = config.leaderboard, config.selection
    committees = {name: list(c) for name, c in (committees or {}).items() if len(c) > 1}
    members = [key for c in committees.values() for key in c]
    meta = store.meta
    # Racing may have stopped a member on part of the search split: its row needs all of it.
    score_missing(store, evaluator, members, meta.search_split, meta.search_examples, progress)
    if choosing.pool:
        # Without validation every candidate counts as trained on train: none is scored there.
        trained = (lambda *_: True) if not choosing.validation else trained_on_train
        select(store, task, comparison, evaluator, choosing.pool, trained, log)
    rescore_finalists(
        store,
        evaluator,
        options.top_k,
        options.rescore_minutes,
        config.seed,
        progress,
        log,
        members,
    )
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
        committees=committees,
        log=log,
    )
    if choosing.pool:
        prefer_ensemble(store, task, comparison, choosing.z, log)
        prefer_committee(store, log)
    # The export's rows: every finalist, plus as many rows as there are ensembles (those that
    # rank among them on dev).
    write_export(store, config.export_path, (options.top_k + n_ensembles) or None)
