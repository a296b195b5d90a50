"""The objective contract: a named, directed function of a prompt's outputs on some examples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from promptscout.prompts import Prompt
    from promptscout.tasks import Example, Task

MAXIMIZE = "maximize"
MINIMIZE = "minimize"


UNDECIDED = -1
"""The prediction of a row whose highest output several classes share."""


def predicted_classes(outputs: np.ndarray) -> np.ndarray:
    """Predicted class per row: the class with the highest output, or :data:`UNDECIDED` where
    several share the highest (a row that does not decide, e.g. a generated answer naming no
    label word, or label words a server listed none of: it counts as wrong)."""
    scores = np.asarray(outputs, dtype=np.float64)
    top = scores.max(axis=1, keepdims=True)
    decided = (scores == top).sum(axis=1) == 1
    return np.where(decided, scores.argmax(axis=1), UNDECIDED)


@dataclass(frozen=True)
class ObjectiveInput:
    """Everything an objective may look at.

    Attributes:
        task: The task being searched.
        examples: The scored examples, in output order.
        outputs: Classification: float array ``[n, classes]`` of label-word log-probabilities
            (normalised over the vocabulary, not over classes). Generation: ``n`` strings.
        prompt: The prompt that produced the outputs.
        prompt_tokens: Length of the prompt's own text (instruction, template, demos) in tokens.
    """

    task: Task
    examples: Sequence[Example]
    outputs: Any
    prompt: Prompt
    prompt_tokens: int = 0

    @property
    def labels(self) -> np.ndarray:
        """Gold class indices as an int array (classification tasks)."""
        return np.array([int(e.label) for e in self.examples], dtype=np.int64)

    @property
    def predictions(self) -> np.ndarray:
        """Predicted class per example (see :func:`predicted_classes`)."""
        return predicted_classes(self.outputs)

    @property
    def class_log_probs(self) -> np.ndarray:
        """Outputs renormalised over the classes: ``log P(class | text, class in label set)``."""
        scores = np.asarray(self.outputs, dtype=np.float64)
        top = scores.max(axis=1, keepdims=True)
        return scores - (top + np.log(np.exp(scores - top).sum(axis=1, keepdims=True)))


@dataclass(frozen=True)
class Objective:
    """A metric searchers optimise and the leaderboard ranks by.

    Attributes:
        name: Registry name, shown in leaderboards and exports.
        direction: ``"maximize"`` or ``"minimize"``.
        fn: Maps an :class:`ObjectiveInput` to a float.
        task_kinds: Task kinds the objective applies to.
    """

    name: str
    direction: str
    fn: Callable[[ObjectiveInput], float]
    task_kinds: tuple[str, ...] = ("classification",)

    def __call__(self, data: ObjectiveInput) -> float:
        return float(self.fn(data))

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` for this objective."""
        return a > b if self.direction == MAXIMIZE else a < b

    def signed(self, value: float) -> float:
        """``value`` oriented so that larger is better."""
        return value if self.direction == MAXIMIZE else -value
