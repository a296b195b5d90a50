"""Ensembles and confidence intervals at the end of a campaign, and scoring an exported ensemble.

:func:`finalize_ensembles` runs after the finalists were re-scored on the held-out split. It pools
the members' stored outputs (:attr:`Evaluation.outputs`) on dev and test, so ensembles cost no
model calls beyond their members' scoring (contextual calibration adds three content-free examples
per finalist). It writes two store meta entries, which the leaderboard reads:

- ``ensembles``: one record per ensemble row: ``key``, ``ensemble`` (:meth:`Ensemble.to_dict`,
  with the fitted weights), ``dev`` and ``test`` objective values, ``test_interval`` and
  ``prompt_tokens`` (the members' total);
- ``intervals``: ``{prompt key: {"test": {objective: [low, high]}}}`` for the finalists.

Stores written before ensembles existed simply lack both entries and read as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from promptscout.ensemble.types import Ensemble, pool_inputs
from promptscout.ensemble.weights import cross_validated, fit_weights
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator, ProgressCallback
from promptscout.evaluation.scoring import objective_values
from promptscout.objectives import Objective, ObjectiveInput
from promptscout.objectives.intervals import confidence_intervals
from promptscout.prompts import Prompt
from promptscout.store import Store
from promptscout.tasks import CONTENT_FREE_SPLIT, Task


def pooled_evaluation(
    task: Task,
    objectives: Sequence[Objective],
    ensemble: Ensemble,
    members: Sequence[Evaluation],
    content_free: Sequence[Evaluation] | None = None,
    outputs: np.ndarray | None = None,
) -> Evaluation:
    """The ensemble's evaluation from its members' evaluations on the same examples.

    Args:
        task: The task (labels for the objectives).
        objectives: Objectives to compute on the pooled outputs.
        ensemble: The ensemble.
        members: One evaluation per member, in member order, all on the same examples.
        content_free: The members' content-free evaluations (calibrated ensembles).
        outputs: Pooled outputs to use instead of :meth:`Ensemble.combine` (cross-validated
            predictions of a weighted ensemble).
    """
    split, ids = members[0].split, members[0].example_ids
    if any(m.example_ids != ids for m in members):
        raise ValueError("ensemble members were scored on different examples")
    if outputs is None:
        free = [np.asarray(c.outputs) for c in content_free] if content_free else None
        outputs = ensemble.combine([np.asarray(m.outputs) for m in members], free)
    length = sum(m.prompt_tokens for m in members)
    values, error = objective_values(
        task, objectives, ensemble.members[0], task.examples(split, ids), outputs, length
    )
    return Evaluation(
        ensemble.key,
        split,
        ids,
        outputs.tolist(),
        values,
        sum(m.examples for m in members),
        sum(m.tokens for m in members),
        sum(m.seconds for m in members),
        error,
        length,
    )


def score_ensemble(
    evaluator: Evaluator,
    task: Task,
    objectives: Sequence[Objective],
    ensemble: Ensemble,
    split: str,
    example_ids: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> Evaluation:
    """Score an ensemble: score its members (and their content-free inputs when calibrated)
    with ``evaluator`` and pool them."""
    members = evaluator.evaluate(ensemble.members, split, example_ids, progress)
    free = evaluator.evaluate(ensemble.members, CONTENT_FREE_SPLIT) if ensemble.calibrate else []
    for evaluation in [*members, *free]:
        if evaluation.error:
            raise PromptscoutError(
                f"ensemble member {evaluation.prompt_key} could not be scored: {evaluation.error}"
            )
    return pooled_evaluation(task, objectives, ensemble, members, free or None)


def _content_free(
    store: Store,
    task: Task,
    evaluator: Callable[[], Evaluator],
    prompts: Sequence[Prompt],
    searchers: dict[str, str],
) -> dict[str, Evaluation]:
    """Content-free evaluations of ``prompts``, from the store or scored now and stored."""
    ids = [e.id for e in task.content_free()]
    found: dict[str, Evaluation] = {}
    todo = []
    for prompt in prompts:
        stored = store.find_evaluation(prompt.key, CONTENT_FREE_SPLIT, ids)
        if stored is not None and stored.ok:
            found[prompt.key] = stored
        else:
            todo.append(prompt)
    by_key = {p.key: p for p in todo}
    for evaluation in evaluator().iter_evaluate(todo, CONTENT_FREE_SPLIT, ids) if todo else ():
        key = evaluation.prompt_key
        store.add_evaluation(by_key[key], searchers[key], evaluation)
        if evaluation.ok:
            found[key] = evaluation
    return found


def _intervals(
    task: Task, objectives: Sequence[Objective], prompt: Prompt, evaluation: Evaluation
) -> dict[str, list[float]]:
    examples = task.examples(evaluation.split, evaluation.example_ids)
    data = ObjectiveInput(
        task, examples, np.asarray(evaluation.outputs), prompt, evaluation.prompt_tokens
    )
    return confidence_intervals(objectives, data, evaluation.objectives)


class _Pooler:
    """Builds ensemble records from the finalists' stored evaluations."""

    def __init__(
        self,
        task: Task,
        objectives: Sequence[Objective],
        dev: dict[str, Evaluation],
        test: dict[str, Evaluation],
        free: dict[str, Evaluation],
    ) -> None:
        self.task, self.objectives = task, objectives
        self.dev, self.test, self.free = dev, test, free

    def record(self, method: str, members: Sequence[Prompt], calibrate: bool) -> dict[str, Any]:
        free = [self.free[p.key] for p in members] if calibrate else None
        dev = [self.dev[p.key] for p in members]
        if method == "weighted":
            # Weights are fitted on all of dev for the held-out split; the dev column shows
            # out-of-fold predictions, so it is as honest as the other rows' dev values.
            inputs = pool_inputs(
                [np.asarray(e.outputs) for e in dev],
                [np.asarray(e.outputs) for e in free] if free else None,
            )
            labels = [int(e.label) for e in self.task.examples(dev[0].split, dev[0].example_ids)]
            weights, bias = fit_weights(inputs, labels)
            ensemble = Ensemble(method, tuple(members), tuple(weights), tuple(bias), calibrate)
            dev_eval = pooled_evaluation(
                self.task, self.objectives, ensemble, dev, free, cross_validated(inputs, labels)
            )
        else:
            ensemble = Ensemble(method, tuple(members), calibrate=calibrate)
            dev_eval = pooled_evaluation(self.task, self.objectives, ensemble, dev, free)
        record: dict[str, Any] = {
            "key": ensemble.key,
            "ensemble": ensemble.to_dict(),
            "dev": dev_eval.objectives if dev_eval.ok else None,
            "test": None,
            "test_interval": None,
            "prompt_tokens": dev_eval.prompt_tokens,
        }
        if all(p.key in self.test for p in members):
            tests = [self.test[p.key] for p in members]
            test_eval = pooled_evaluation(self.task, self.objectives, ensemble, tests, free)
            if test_eval.ok:
                record["test"] = test_eval.objectives
                record["test_interval"] = _intervals(
                    self.task, self.objectives, ensemble.members[0], test_eval
                )
        return record


def finalize_ensembles(
    store: Store,
    task: Task,
    objectives: Sequence[Objective],
    evaluator: Callable[[], Evaluator],
    finalists: Sequence[tuple[Prompt, str]],
    *,
    methods: Sequence[str] = (),
    size: int = 0,
    calibrate: bool = False,
    committees: Mapping[str, Sequence[str]] | None = None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Store the finalists' test intervals and the ensemble rows; return the number of rows.

    Run after the finalists were re-scored on the held-out split.

    Args:
        store: The campaign store (writable).
        task: The campaign's task.
        objectives: The campaign's objectives.
        evaluator: Returns the evaluator that scores content-free inputs (called only when
            ``calibrate`` is set and some are not in the store yet).
        finalists: The best prompts by the search split, best first, each with the searcher
            that proposed it.
        methods: Pooling methods of the ensembles of the best ``size`` finalists.
        size: Members of each ensemble (0: all finalists).
        calibrate: Add a contextually calibrated row per finalist and a calibrated variant of
            each ensemble.
        committees: By searcher name, keys of stored prompts pooled as an ``average`` row
            whatever their rank (its committee of trained members); the row's ``committee``
            names the searcher.
        log: Where to write a line about what was done.
    """
    meta = store.meta
    dev_ids, test_ids = meta.search_examples, meta.holdout_examples
    prompts = [prompt for prompt, _ in finalists]
    searchers = {prompt.key: searcher for prompt, searcher in finalists}
    stored_prompts = store.prompts() if committees else {}
    groups = {n: [stored_prompts[k][0] for k in keys] for n, keys in (committees or {}).items()}

    def stored(split: str, ids: Sequence[str]) -> dict[str, Evaluation]:
        keys = {p.key for p in prompts} | {p.key for group in groups.values() for p in group}
        found = {k: store.find_evaluation(k, split, ids) for k in keys} if ids else {}
        return {k: e for k, e in found.items() if e is not None and e.ok}

    dev, test = stored(meta.search_split, dev_ids), stored(meta.holdout_split, test_ids)
    meta.intervals = {
        p.key: {"test": _intervals(task, objectives, p, test[p.key])}
        for p in prompts
        if p.key in test
    }
    records: list[dict[str, Any]] = []
    committee_rows: list[dict[str, Any]] = []
    members: list[Prompt] = []
    if task.kind == "classification":
        free = _content_free(store, task, evaluator, prompts, searchers) if calibrate else {}
        pooler = _Pooler(task, objectives, dev, test, free)
        usable = [p for p in prompts if p.key in dev and (not calibrate or p.key in free)]
        members = usable[: size or len(usable)]
        if len(members) >= 2:
            records += [pooler.record(m, members, False) for m in methods]
        if calibrate:
            records += [pooler.record("average", [p], True) for p in usable]
            if len(members) >= 2:
                records += [pooler.record(m, members, True) for m in methods]
        for name, group in groups.items():
            scored = [p for p in group if p.key in dev]
            if len(scored) >= 2:
                row = pooler.record("average", scored, False)
                committee_rows.append({**row, "committee": name})
    meta.ensembles = records + committee_rows
    if log is not None and records:
        log(f"{len(records)} ensemble row(s) from the top {len(members)} prompts")
    if log is not None and committee_rows:
        sizes = ", ".join(str(len(r["ensemble"]["members"])) for r in committee_rows)
        names = ", ".join(r["committee"] for r in committee_rows)
        log(f"committee row(s) of {sizes} trained members: {names}")
    return len(records) + len(committee_rows)
