"""Why the pick wins, from the store alone (no model): its confusion matrix and per-class
accuracy on the held-out split, and the examples on which it and the best hand-written candidate
disagree.

The store keeps every evaluation's per-example outputs, so a prompt's predictions are its stored
outputs' argmax and an ensemble's are its members' outputs pooled with
:meth:`~promptscout.ensemble.types.Ensemble.combine` (calibrated with their stored content-free
outputs when it calibrates). Gold labels and texts come from the campaign's task, loaded from
its bundled set or folder as the store's config names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptscout.ensemble.types import Ensemble
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.leaderboard import LeaderboardEntry
from promptscout.objectives.base import UNDECIDED, predicted_classes
from promptscout.prompts import Prompt
from promptscout.sections import TaskConfig
from promptscout.store import Store
from promptscout.tasks import CONTENT_FREE_SPLIT, Example, Task

MANUAL = "manual"  # the searcher type of hand-written prompts
TEXT_CHARS = 300


def load_campaign_task(config: dict[str, Any]) -> tuple[Task | None, str | None]:
    """The campaign's task as its stored config names it, or None and why it could not load."""
    try:
        return TaskConfig.from_stored(config["task"]).load(), None
    except PromptscoutError as exc:
        return None, str(exc)


@dataclass(frozen=True)
class Scored:
    """A candidate's outputs on some examples of one split, in the split's order."""

    split: str
    ids: tuple[str, ...]
    outputs: np.ndarray

    @property
    def predictions(self) -> dict[str, int]:
        return dict(zip(self.ids, predicted_classes(self.outputs).tolist(), strict=True))


def _evaluation(store: Store, key: str, split: str, ids: tuple[str, ...]) -> Evaluation | None:
    """The prompt's evaluation on all of ``ids``, else its latest on any examples of ``split``
    (a candidate racing stopped early); None when it has no outputs there."""
    for found in (store.find_evaluation(key, split, ids), store.latest_evaluation(key, split)):
        if found is not None and found.ok and found.outputs:
            return found
    return None


def outputs_of(
    store: Store, candidate: Prompt | Ensemble, split: str, ids: tuple[str, ...]
) -> Scored | None:
    """A prompt's stored outputs on ``split``, or an ensemble's pooled from its members' on the
    examples all of them were scored on; None when there are none (or it generates text)."""
    members = candidate.members if isinstance(candidate, Ensemble) else (candidate,)
    found = [_evaluation(store, p.key, split, ids) for p in members]
    if any(e is None for e in found):
        return None
    shared = set.intersection(*(set(e.example_ids) for e in found))  # type: ignore[union-attr]
    order = [i for i in ids if i in shared] + sorted(shared - set(ids))
    rows = []
    for evaluation in found:
        assert evaluation is not None
        position = {i: k for k, i in enumerate(evaluation.example_ids)}
        outputs = np.asarray(evaluation.outputs)
        if outputs.ndim != 2:
            return None  # generated text: nothing to confuse
        rows.append(outputs.astype(np.float64)[[position[i] for i in order]])
    if not isinstance(candidate, Ensemble):
        return Scored(split, tuple(order), rows[0])
    free = None
    if candidate.calibrate:
        free = [store.latest_evaluation(p.key, CONTENT_FREE_SPLIT) for p in members]
        if any(e is None or not e.ok for e in free):
            return None
        free = [np.asarray(e.outputs, dtype=np.float64) for e in free]  # type: ignore[union-attr]
    return Scored(split, tuple(order), candidate.combine(rows, free))


@dataclass(frozen=True)
class ClassRow:
    """One class of the per-class table: its gold examples, how many the pick got right, how
    many it predicted as this class and how many of those were right."""

    name: str
    examples: int
    correct: int
    predicted: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.examples if self.examples else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None


@dataclass(frozen=True)
class Confusion:
    """Counts of (gold class, predicted class): ``matrix[gold, predicted]``, its last column the
    undecided predictions."""

    classes: tuple[str, ...]
    matrix: np.ndarray

    @property
    def examples(self) -> int:
        return int(self.matrix.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.matrix[:, : len(self.classes)]))

    @property
    def undecided(self) -> int:
        return int(self.matrix[:, -1].sum())

    def rows(self) -> list[ClassRow]:
        k = len(self.classes)
        return [
            ClassRow(
                name,
                int(self.matrix[c].sum()),
                int(self.matrix[c, c]),
                int(self.matrix[:k, c].sum()),
            )
            for c, name in enumerate(self.classes)
        ]


def confusion(task: Task, scored: Scored) -> Confusion:
    k = task.num_classes
    matrix = np.zeros((k, k + 1), dtype=np.int64)
    for example_id, predicted in scored.predictions.items():
        gold = int(task.example(example_id).label)
        matrix[gold, predicted if predicted != UNDECIDED else k] += 1
    return Confusion(task.classes, matrix)


def example_text(example: Example, limit: int = TEXT_CHARS) -> str:
    """The example's input, its fields labelled when it has several, cut to ``limit`` chars."""
    fields = example.fields
    text = (
        next(iter(fields.values()))
        if len(fields) == 1
        else " | ".join(f"{name}: {value}" for name, value in fields.items())
    )
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


@dataclass(frozen=True)
class Disagreement:
    """An example on which the pick and the baseline predict different classes."""

    id: str
    text: str
    gold: int
    pick: int
    baseline: int


@dataclass(frozen=True)
class Comparison:
    """The pick against the best hand-written candidate on the examples both were scored on.

    Attributes:
        baseline: The hand-written candidate, ``searcher`` its searcher, ``rank`` its leaderboard
            rank (None when unranked) and ``chosen`` how it was chosen.
        split: Where they were compared: the held-out split, or the search split when the
            baseline was not re-scored on the held-out one.
        shared: Examples both were scored on there.
        rows: Every disagreement, in the split's order.
        pick_right / baseline_right: How many of them each got right.
    """

    baseline: Prompt
    searcher: str
    rank: int | None
    chosen: str
    split: str
    shared: int
    rows: list[Disagreement]

    @property
    def pick_right(self) -> int:
        return sum(r.pick == r.gold for r in self.rows)

    @property
    def baseline_right(self) -> int:
        return sum(r.baseline == r.gold for r in self.rows)


def disagreements(task: Task, pick: Scored, baseline: Scored) -> tuple[int, list[Disagreement]]:
    """How many examples both were scored on, and those (in the pick's order) where their
    predictions differ."""
    theirs = baseline.predictions
    shared, rows = 0, []
    for example_id, mine in pick.predictions.items():
        if example_id not in theirs:
            continue
        shared += 1
        if mine != theirs[example_id]:
            example = task.example(example_id)
            rows.append(
                Disagreement(
                    example_id, example_text(example), int(example.label), mine, theirs[example_id]
                )
            )
    return shared, rows


def hand_written(
    store: Store, entries: list[LeaderboardEntry], pick: str
) -> tuple[Prompt, str, int | None, str] | None:
    """The best-ranked candidate a ``manual`` searcher proposed (other than the pick itself),
    else the first candidate stored: (prompt, searcher, rank, how it was chosen)."""
    manual = {
        (s.get("options") or {}).get("name") or s["type"]
        for s in store.meta.config["searchers"]
        if s["type"] == MANUAL
    }
    for entry in entries:
        if entry.kind == "prompt" and entry.searcher in manual and entry.prompt.key != pick:
            return entry.prompt, entry.searcher, entry.rank, "the best-ranked hand-written prompt"
    ranks = {e.prompt.key: e.rank for e in entries}
    for key, (prompt, searcher) in store.prompts().items():
        if key != pick:
            why = "no hand-written prompt was ranked: the first candidate stored"
            return prompt, searcher, ranks.get(key), why
    return None


@dataclass
class Explanation:
    """What the report says about the pick; ``notes`` say what could not be shown and why."""

    pick: LeaderboardEntry | None
    task: Task | None = None
    held_out: Scored | None = None
    confusion: Confusion | None = None
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)


def explain(store: Store, entries: list[LeaderboardEntry]) -> Explanation:
    """Explain the leaderboard's first row (``entries``: the leaderboard, best first)."""
    found = Explanation(entries[0] if entries else None)
    if found.pick is None:
        found.notes.append("no candidate was scored on the whole search split yet")
    elif not store.meta.label_words:
        found.notes.append("a generation task: no classes to confuse")
    else:
        found.task, error = load_campaign_task(store.meta.config)
        if found.task is None:
            found.notes.append(
                f"the task's examples (gold labels, texts) could not be read: {error}"
            )
            return found
        try:
            _explain(store, entries, found)
        except PromptscoutError as exc:  # the task's examples do not match the store's ids
            found.notes.append(f"the task's examples do not match the store: {exc}")
    return found


def _explain(store: Store, entries: list[LeaderboardEntry], found: Explanation) -> None:
    meta, task = store.meta, found.task
    assert found.pick is not None and task is not None
    pick = found.pick.prompt
    held = meta.holdout_split, meta.holdout_examples
    found.held_out = outputs_of(store, pick, *held) if held[1] else None
    if found.held_out is None:
        found.notes.append(
            f"the pick has no outputs on the held-out {held[0]} split yet (finalists are "
            "re-scored there at the campaign's end)"
        )
    else:
        found.confusion = confusion(task, found.held_out)
    baseline = hand_written(store, entries, pick.key)
    if baseline is None:
        found.notes.append("no other candidate to compare the pick with")
        return
    for split, ids in (held, (meta.search_split, meta.search_examples)):
        mine = outputs_of(store, pick, split, ids) if ids else None
        theirs = outputs_of(store, baseline[0], split, ids) if ids else None
        if mine is not None and theirs is not None:
            shared, rows = disagreements(task, mine, theirs)
            if shared:
                found.comparison = Comparison(*baseline, split, shared, rows)
                return
    found.notes.append("the pick and the hand-written candidate share no scored examples")
