"""Moving dev examples into train (the ``[task]`` table's ``min_train``), and dealing dev into
folds.

Few-shot sets split their labelled examples evenly: LM-BFF's 16-shot sets have 16 per class in
train and 16 in dev. A method that trains numbers on the training labels (LoRA) learns from
every example it is given, while the search split only ranks candidates; and selection already
validates every prompt that did not learn from the training labels on the training examples, so
what moves to train is not lost as evidence for those prompts. On MR's 16-shot splits 13 and 87,
LoRA's committee trained on 54 examples and early-stopped on the other 10 scored 0.8550 on test
against 0.8317 trained on 32 and early-stopped on 32 (``benchmarks/peft_methods.py
--min-train 54``); on SST-2 it lost 1.1 points. What it costs is the search split: as the
default campaign's split at seed 42, MR's 10 search examples tied a dozen candidates at 1.0,
early stopping on them kept an adapter's seventh epoch (train loss 0.007), and the pick fell
from 0.8340 to 0.8110 on test; so it is an option, not a default.

:func:`dev_folds` deals dev into class-balanced folds instead, for the ``peft`` searcher's
cross-fitted committee (:mod:`promptscout.searchers.parametric.cross_fit`): each member moves
every fold but its own into its training examples, and everyone's search split stays whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.tasks.types import Example, Task

# Seeds the draw beside the split seed, so moving examples draws apart from anything else
# seeded by it.
_STREAM = 23
_FOLD_STREAM = 29


def grow_train(task: Task, size: int, seed: int) -> Task:
    """``task`` with dev examples moved into train until train has ``size`` examples.

    The moved examples are drawn class by class in turn (each class's dev examples shuffled
    with ``seed``), so train and what stays in dev keep the class mix; every class keeps at
    least one dev example. Moved examples keep their ids (``dev-3`` stays ``dev-3``). A task
    whose train already has ``size`` examples is returned as it is.

    Raises:
        PromptscoutError: If dev cannot give that many and keep an example of every class.
    """
    wanted = size - len(task.train)
    if wanted <= 0:
        return task
    rng = np.random.default_rng([seed, _STREAM])
    # Each class's shuffled examples but one (the one it keeps in dev), taken in turn.
    movable = [group[:-1] for group in _shuffled_classes(task, rng)]
    pool = [g[i] for i in range(max(map(len, movable), default=0)) for g in movable if i < len(g)]
    if wanted > len(pool):
        raise PromptscoutError(
            f"[task] min_train = {size}: task {task.name!r} has {len(task.train)} training and "
            f"{len(task.dev)} dev examples, and dev can give {len(pool)} while keeping one of "
            f"each class; use min_train = {len(task.train) + len(pool)} or less"
        )
    return move_to_train(task, {e.id for e in pool[:wanted]})


def move_to_train(task: Task, ids: Collection[str]) -> Task:
    """``task`` with the dev examples ``ids`` moved to the end of train (ids kept)."""
    return dataclasses.replace(
        task,
        train=(*task.train, *(e for e in task.dev if e.id in ids)),
        dev=tuple(e for e in task.dev if e.id not in ids),
    )


def dev_folds(task: Task, folds: int, seed: int) -> list[tuple[str, ...]]:
    """The dev examples' ids dealt into ``folds`` disjoint folds that keep the class mix: each
    class's examples shuffled with ``seed``, the classes one after another, dealt in turn (so
    fold sizes differ by one at most). Every dev example is in exactly one fold; a fold may be
    empty when dev has fewer examples than folds."""
    rng = np.random.default_rng([seed, _FOLD_STREAM])
    dealt = [e for group in _shuffled_classes(task, rng) for e in group]
    return [tuple(e.id for e in dealt[j::folds]) for j in range(folds)]


def _shuffled_classes(task: Task, rng: np.random.Generator) -> list[list[Example]]:
    """Dev's examples by class (sorted by label; one group for a generation task), each group
    shuffled with ``rng``."""
    by_class: dict[str, list[Example]] = {}
    for example in task.dev:
        key = str(example.label) if task.kind == "classification" else ""
        by_class.setdefault(key, []).append(example)
    return [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(by_class.items())]
