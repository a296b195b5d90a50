"""The rl searcher's options and its reward function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from promptscout.options import OptionError, option, require_non_negative
from promptscout.prompts import LABEL_SLOT, TRIGGER
from promptscout.searchers.base import SearcherConfig

DEFAULT_TRIGGERS = 5


@dataclass
class RLConfig(SearcherConfig):
    """Options of the rl searcher.

    An empty ``template`` is the task's fields, then ``num_triggers`` slots
    (``"{text} [T][T][T][T][T]"``); a template without slots gets ``num_triggers`` slots
    appended after a space. The default vocabulary is the first ``vocab_size`` plain-word
    tokens of the model (a space and letters, which tokenise back to themselves). Each sampled
    prompt's reward is averaged over ``train_examples`` train examples, the same number of every
    class (``train_examples // classes`` each, a fresh slice of shuffled per-class streams every
    step; all of train when it holds fewer). With ``prior = 1`` the policy starts as the
    backbone's distribution over the candidates; with 0 it starts uniform and the head alone
    decides. ``wrong_coeff`` is larger than ``correct_coeff`` so mistakes cost more than hits
    earn (RLPrompt: 180 and 200 on a percentage scale, here 1.8 and 2.0 on probabilities).
    """

    renamed_options: ClassVar[dict[str, str]] = {"tokens": "num_triggers"}

    batch_size: int = option(8, help="Prompts sampled per training step.")
    template: str = option(
        "",
        help="Text with {field} placeholders and [T] slots the written words fill, in order; "
        "empty: the fields, then num_triggers slots.",
    )
    num_triggers: int | None = option(
        None,
        help="Words the policy writes (default 5); must match the template's slots if it has some.",
    )
    context: str = option("Prompt:", help="The text the policy reads before writing.")
    vocabulary: list[str] = option(
        [],
        help="Words the policy may write, each one token after a space (default: vocab_size "
        "plain-word tokens).",
    )
    vocab_size: int = option(3000, help="Size of the default vocabulary.")
    exclude: list[str] = option([], help="Words never written (the label words never are).")
    steps: int = option(
        40, help="Training steps in all; then the final greedy prompt, and it is exhausted."
    )
    train_examples: int = option(
        32, help="Train examples (class-balanced) each sampled prompt's reward is averaged over."
    )
    mlp_hidden: int = option(128, help="Width of the policy head's hidden layer.")
    learning_rate: float = option(1e-2, help="Adam's step size for the head.")
    prior: float = option(
        1.0, help="Weight of the backbone's own next-token logits in the policy (0: uniform)."
    )
    repeats: bool = option(False, help="Whether a prompt may hold a word twice.")
    entropy: float = option(0.0, help="Weight of an entropy bonus in the policy-gradient loss.")
    correct_coeff: float = option(
        1.8, help="Reward per unit of probability gap when the prediction is right."
    )
    wrong_coeff: float = option(2.0, help="Reward per unit of (negative) gap when it is wrong.")
    greedy_every: int = option(
        10, help="Also ask the greedy prompt every this many steps (0: only at the end)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vocab_size", "train_examples", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise OptionError(name, "must be at least 1")
        require_non_negative(self, ("steps", "greedy_every", "entropy", "prior"))
        for name in ("learning_rate", "correct_coeff", "wrong_coeff"):
            if not getattr(self, name) > 0:
                raise OptionError(name, "must be positive")
        if not self.context.strip():
            raise OptionError("context", "must be some text, e.g. 'Prompt:'")
        slots = self.template.count(TRIGGER)
        if self.num_triggers is not None:
            if self.num_triggers < 1:
                raise OptionError("num_triggers", "must be at least 1")
            if slots and slots != self.num_triggers:
                n = self.num_triggers
                raise OptionError(
                    "num_triggers",
                    f"is {n} but 'template' has {slots} [T] slots; drop one of them",
                    f"'template' has {slots} [T] slots but 'num_triggers' is {n}; drop one of them",
                )
        if self.template and not slots:
            self.template += " " + TRIGGER * (self.num_triggers or DEFAULT_TRIGGERS)
        if LABEL_SLOT in self.template:
            raise OptionError("template", "must not hold [P]; the policy needs a causal LM")


def reward(
    scores: np.ndarray, gold: Sequence[int], correct_coeff: float = 1.8, wrong_coeff: float = 2.0
) -> float:
    """Mean reward of one prompt over examples (RLPrompt's classification reward).

    Per example, with class probabilities normalised over the label words, the gap is the gold
    class's probability minus the best other class's; the reward is ``correct_coeff * gap``
    when the gap is positive (a right prediction) and ``wrong_coeff * gap`` otherwise.

    Args:
        scores: ``[examples, classes]`` label-word log-probabilities (``score_labels``).
        gold: the gold class of each example.
        correct_coeff: scale of a right prediction's (positive) gap.
        wrong_coeff: scale of a wrong prediction's (non-positive) gap.

    Example:
        >>> import numpy as np
        >>> reward(np.log([[0.2, 0.8], [0.7, 0.3]]), [1, 1])  # (1.8*0.6 + 2.0*-0.4) / 2
        0.14
    """
    scores = np.asarray(scores, dtype=np.float64)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(len(probs))
    gold_ = np.asarray(gold, dtype=int)
    others = probs.copy()
    others[rows, gold_] = -np.inf
    gap = probs[rows, gold_] - others.max(axis=1)
    return round(float(np.where(gap > 0, correct_coeff * gap, wrong_coeff * gap).mean()), 12)


def z_scores(values: Sequence[float]) -> np.ndarray:
    """Rewards normalised across one step's prompts (zeros when they are all equal)."""
    v = np.asarray(values, dtype=np.float64)
    std = v.std()
    return (v - v.mean()) / std if std > 1e-12 else np.zeros_like(v)
