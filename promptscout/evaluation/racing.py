"""Racing: score candidates on growing minibatches and stop the ones clearly behind.

Candidates are first scored on a small minibatch of the search split; at each stage a candidate
is compared with the incumbent (the best candidate scored on the whole split so far) on exactly
the same examples, using the incumbent's stored per-example outputs. A candidate whose paired
advantage is below zero with confidence (``mean + z * standard error < 0``) stops there;
the rest go on to the next, larger stage, and the last stage is the whole split. Per-example
terms are the ranking score of each example on its own: exactly the mean's terms for accuracy and
cross-entropy, a heuristic for non-decomposable objectives such as macro-F1.

Stages take a fixed, seeded permutation of the split, so resuming sees the same minibatches, and
the score cache means examples scored at an earlier stage are never scored again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.objectives import Objective, ObjectiveInput, Ranking
from promptscout.prompts import Prompt
from promptscout.tasks import Task


@dataclass
class RacingConfig:
    """Racing options (the ``[racing]`` table of a campaign file).

    Attributes:
        enabled: Race candidates (on by default).
        first: Examples in the first minibatch.
        factor: Each stage has ``factor`` times the examples of the one before.
        z: Confidence of a stop: larger stops fewer candidates (1.0 is about 84% one-sided).
    """

    enabled: bool = True
    first: int = 8
    factor: float = 2.0
    z: float = 1.0

    def __post_init__(self) -> None:
        if self.first < 2:
            raise PromptscoutError(f"racing 'first' must be at least 2, got {self.first}")
        if self.factor <= 1:
            raise PromptscoutError(f"racing 'factor' must be above 1, got {self.factor}")
        if self.z < 0:
            raise PromptscoutError(f"racing 'z' must be 0 or more, got {self.z}")


def race_stages(config: RacingConfig, split_ids: Sequence[str], seed: int) -> list[tuple[str, ...]]:
    """Example ids of each stage: nested seeded minibatches, the last being ``split_ids`` as is."""
    ids = tuple(split_ids)
    if not config.enabled:
        return [ids]
    order = np.random.default_rng(seed).permutation(len(ids))
    stages, size = [], config.first
    while size < len(ids):
        stages.append(tuple(ids[i] for i in sorted(order[:size])))
        size = max(size + 1, int(math.ceil(size * config.factor)))
    return [*stages, ids]


class PairedComparison:
    """Decides whether a candidate is clearly behind the incumbent on the same examples."""

    def __init__(
        self, task: Task, objectives: Sequence[Objective], ranking: Ranking, z: float
    ) -> None:
        self.task = task
        self.objectives = [o for o in objectives if task.kind in o.task_kinds]
        self.ranking = ranking
        self.z = z

    def per_example(self, prompt: Prompt, evaluation: Evaluation, ids: Sequence[str]) -> np.ndarray:
        """The ranking score of each example of ``ids`` on its own, from stored outputs."""
        position = {example_id: i for i, example_id in enumerate(evaluation.example_ids)}
        scores = []
        for example_id in ids:
            output = evaluation.outputs[position[example_id]]
            outputs = np.array([output]) if self.task.kind == "classification" else [output]
            data = ObjectiveInput(
                self.task,
                [self.task.example(example_id)],
                outputs,
                prompt,
                evaluation.prompt_tokens,
            )
            scores.append(self.ranking.score({o.name: o(data) for o in self.objectives}))
        return np.array(scores)

    def clearly_behind(self, candidate: np.ndarray, incumbent: np.ndarray) -> bool:
        """True when the candidate's mean advantage is below zero with confidence ``z``."""
        diff = candidate - incumbent
        if not np.all(np.isfinite(diff)):
            return bool(np.any(np.isneginf(candidate)))
        n = len(diff)
        spread = diff.std(ddof=1) / math.sqrt(n) if n > 1 else math.inf
        return bool(diff.mean() + self.z * spread < 0)
