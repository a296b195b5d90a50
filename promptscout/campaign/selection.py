"""Selection: the campaign's pick is the candidate most likely to be best on unseen data.

After the search, the best ``pool`` candidates by the search split are compared again on more
evidence than the 32-odd search examples that chose them (and that every search step has been
fitting): each is also scored on the training examples it never learned from — all of them but
its own demonstrations and the examples its ``train_read`` note names (those a writer read, and
the half that label-word search picked its words with) — unless its searcher trained on all the
training labels (gradient, RL and soft-prompt searchers). A learned verbalizer is scored on a
training example by a head fitted on the other folds only
(:mod:`promptscout.evaluation.readout`), and nearest-neighbour demonstrations never show an
input itself, so both are validated there too.

Each candidate's selection score is the mean, over all its examples (search split and
validation), of the ranking score of each example on its own; ties go to the lower mean
cross-entropy of the gold class, then to the search-split order. The search-split part is biased
upwards for every finalist (it chose them); the validation part is not, so the more there is of
it, the less luck decides. The store keeps the order in its ``selection`` meta entry; the
leaderboard ranks the pool by it, so the pick is what ``export`` ranks first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptscout.ensemble.types import Ensemble
from promptscout.evaluation.base import Evaluation, Evaluator
from promptscout.evaluation.racing import PairedComparison
from promptscout.leaderboard import build_leaderboard
from promptscout.objectives.classification import gold_cross_entropy
from promptscout.prompts import Prompt
from promptscout.store import Store
from promptscout.tasks import Task

VALIDATION_SPLIT = "train"


@dataclass(frozen=True)
class Evidence:
    """What selection knows of one candidate: per-example ranking scores and gold-class
    cross-entropies, on the search split and on its validation examples."""

    prompt: Prompt
    searcher: str
    search: np.ndarray
    validation: np.ndarray
    cross_entropy: np.ndarray

    @property
    def terms(self) -> np.ndarray:
        return np.concatenate([self.search, self.validation])

    @property
    def score(self) -> float:
        return float(self.terms.mean())

    @property
    def loss(self) -> float:
        """The mean cross-entropy of the gold class (0 where there is none: generation)."""
        return float(self.cross_entropy.mean()) if len(self.cross_entropy) else 0.0

    def record(self) -> dict[str, Any]:
        return {
            "key": self.prompt.key,
            "score": round(self.score, 6),
            "cross_entropy": round(self.loss, 6) if len(self.cross_entropy) else None,
            "search_examples": len(self.search),
            "validation_examples": len(self.validation),
            "validation_score": round(float(self.validation.mean()), 6)
            if len(self.validation)
            else None,
        }


def validation_ids(task: Task, prompt: Prompt) -> tuple[str, ...]:
    """The training examples a prompt never learned from: all but its demonstrations and the
    examples its ``train_read`` note names (read by its writer or its label-word probe)."""
    seen = set(prompt.demos) | {str(i) for i in prompt.metadata.get("train_read") or ()}
    return tuple(e.id for e in task.train if e.id not in seen)


def select(
    store: Store,
    task: Task,
    comparison: PairedComparison,
    evaluator: Callable[[], Evaluator],
    pool: int,
    trained_on_train: Callable[[Prompt, str], bool],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Score the pool on its validation examples, order it, and store the order.

    Args:
        store: The campaign store (writable).
        task: The campaign's task.
        comparison: The campaign's per-example ranking (as racing uses it).
        evaluator: Returns the evaluator (called only if something needs scoring).
        pool: How many candidates, the best by the search split, selection compares.
        trained_on_train: Whether a prompt (and the searcher that proposed it) was shaped by the
            training labels (its validation would not be held out).
        log: Where to write a line about what was done.

    Returns:
        The selection records, best first (also the store's ``selection`` meta entry).
    """
    meta = store.meta
    leaders = build_leaderboard(store, top=pool, ensembles=False, selection=False)
    leaders = [e for e in leaders if e.kind == "prompt" and e.dev is not None]
    todo = {}
    for entry in leaders:
        ids = _validation_of(task, entry.prompt, entry.searcher, trained_on_train)
        found = store.find_evaluation(entry.prompt.key, VALIDATION_SPLIT, ids) if ids else True
        if found is None:
            todo.setdefault(ids, []).append(entry)
    if todo:
        count = sum(len(ids) * len(entries) for ids, entries in todo.items())
        log(f"selection: scoring {sum(map(len, todo.values()))} finalist(s) on the training "
            f"examples they never learned from ({count} examples)")  # fmt: skip
    for ids, entries in todo.items():
        by_key = {e.prompt.key: e for e in entries}
        prompts = [e.prompt for e in entries]
        for evaluation in evaluator().iter_evaluate(prompts, VALIDATION_SPLIT, ids):
            entry = by_key[evaluation.prompt_key]
            store.add_evaluation(entry.prompt, entry.searcher, evaluation)
    evidence = [_evidence(store, task, comparison, e, trained_on_train) for e in leaders]
    order = sorted(range(len(evidence)), key=lambda i: (-evidence[i].score, evidence[i].loss, i))
    records = [evidence[i].record() for i in order]
    meta.selection = records
    if records and order[0] != 0:
        log(f"selection: the pick is #{order[0] + 1} by the search split, not #1 (more evidence)")
    return records


def _validation_of(
    task: Task, prompt: Prompt, searcher: str, trained_on_train: Callable[[Prompt, str], bool]
) -> tuple[str, ...]:
    return () if trained_on_train(prompt, searcher) else validation_ids(task, prompt)


def _evidence(
    store: Store,
    task: Task,
    comparison: PairedComparison,
    entry: Any,
    trained_on_train: Callable[[Prompt, str], bool],
) -> Evidence:
    meta = store.meta
    prompt = entry.prompt
    search_ids = meta.search_examples
    search = store.find_evaluation(prompt.key, meta.search_split, search_ids)
    assert search is not None  # every leaderboard candidate has one
    parts = [(search, search_ids)]
    ids = _validation_of(task, prompt, entry.searcher, trained_on_train)
    validation = store.find_evaluation(prompt.key, VALIDATION_SPLIT, ids) if ids else None
    if validation is not None and validation.ok:
        parts.append((validation, ids))
    terms = [comparison.per_example(prompt, e, i) for e, i in parts]
    return Evidence(
        prompt,
        entry.searcher,
        terms[0],
        terms[1] if len(terms) > 1 else np.zeros(0),
        np.concatenate([_cross_entropy(task, e) for e, _ in parts]),
    )


def _cross_entropy(task: Task, evaluation: Evaluation) -> np.ndarray:
    """Each example's cross-entropy of the gold class (empty for generation tasks)."""
    if task.kind != "classification":
        return np.zeros(0)
    outputs = np.asarray(evaluation.outputs, dtype=np.float64)
    return gold_cross_entropy(outputs, [int(task.example(i).label) for i in evaluation.example_ids])


def prefer_ensemble(
    store: Store,
    task: Task,
    comparison: PairedComparison,
    z: float,
    log: Callable[[str], None],
) -> str | None:
    """Pick an ensemble over the selected prompt when it is better on held-out evidence.

    Each (uncalibrated) ensemble row is compared with the selection's first prompt on the
    validation examples every member and that prompt were scored on: the ensemble's pooled
    outputs (its weights were fitted on the search split, so these examples are new to it)
    against the prompt's, example by example. The ensemble becomes the pick when its mean
    advantage is above zero by ``z`` standard errors; the best such ensemble wins. Stores and
    returns its key (None: the selected prompt stays the pick).
    """
    meta = store.meta
    records = meta.selection
    meta.pick = None
    if not records or task.kind != "classification":
        return None
    stored = store.prompt(records[0]["key"])
    if stored is None:
        return None
    best = stored[0]
    found: list[tuple[float, str, str]] = []
    for record in meta.ensembles:
        ensemble = Ensemble.from_dict(record["ensemble"])
        if ensemble.calibrate:
            continue
        evaluations = [_latest_validation(store, p.key) for p in (best, *ensemble.members)]
        if any(e is None for e in evaluations):
            continue  # someone was not validated (trained on train): no held-out comparison
        shared = set.intersection(*(set(e.example_ids) for e in evaluations))  # type: ignore[union-attr]
        ids = [i for i in evaluations[0].example_ids if i in shared]  # type: ignore[union-attr]
        if len(ids) < 2:
            continue
        mine = _pooled_terms(comparison, ensemble, evaluations[1:], ids)  # type: ignore[arg-type]
        theirs = comparison.per_example(best, evaluations[0], ids)  # type: ignore[arg-type]
        diff = mine - theirs
        margin = float(diff.mean() - z * diff.std(ddof=1) / np.sqrt(len(diff)))
        if margin > 0:
            found.append((margin, record["key"], ensemble.name))
    if not found:
        return None
    _, key, name = max(found)
    meta.pick = key
    log(f"selection: the pick is the {name} ensemble (ahead of the best prompt on held-out "
        "validation examples)")  # fmt: skip
    return key


def prefer_committee(store: Store, log: Callable[[str], None]) -> str | None:
    """Pick a searcher's committee when selection ranked one of that searcher's proposals first
    (and no ensemble won).

    A committee's members were trained alike and differ only by their seeds (demonstrations,
    start, example order); which of them, or of their epochs, the 32-odd search examples rank
    first is mostly luck, while the mean of the members' class probabilities never has a higher
    cross-entropy than the members' average (the log-loss is convex) and removes the luck of the
    draw. Stores and returns the committee row's key (None: the pick stays).
    """
    meta = store.meta
    records = meta.selection
    if meta.pick is not None or not records:
        return None
    stored = store.prompt(records[0]["key"])
    if stored is None:
        return None
    searcher = stored[1]
    for record in meta.ensembles:
        if record.get("committee") == searcher:
            size = len(record["ensemble"]["members"])
            meta.pick = record["key"]
            log(f"selection: the pick is {searcher}'s committee of {size} trained members, in "
                "place of its proposal ranked first")  # fmt: skip
            return meta.pick
    return None


def _latest_validation(store: Store, key: str) -> Evaluation | None:
    found = store.latest_evaluation(key, VALIDATION_SPLIT)
    return found if found is not None and found.ok else None


def _pooled_terms(
    comparison: PairedComparison,
    ensemble: Ensemble,
    members: list[Evaluation],
    ids: list[str],
) -> np.ndarray:
    """The per-example ranking scores of the ensemble's pooled outputs on ``ids``."""
    rows = []
    for evaluation in members:
        position = {i: k for k, i in enumerate(evaluation.example_ids)}
        rows.append(np.asarray(evaluation.outputs, dtype=np.float64)[[position[i] for i in ids]])
    pooled = ensemble.combine(rows)
    evaluation = Evaluation(ensemble.key, VALIDATION_SPLIT, tuple(ids), pooled.tolist())
    return comparison.per_example(ensemble.members[0], evaluation, ids)
