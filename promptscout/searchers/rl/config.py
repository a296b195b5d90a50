"""The rl searcher's options and its reward function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.prompts import LABEL_SLOT, TRIGGER
from promptscout.searchers.base import SearcherConfig

DEFAULT_TOKENS = 5


@dataclass
class RLConfig(SearcherConfig):
    """Options of the rl searcher.

    Attributes:
        batch_size: Prompts sampled per training step (an ``ask(n)`` samples ``n``).
        template: Text with ``{field}`` placeholders and ``[T]`` slots the written tokens fill,
            in order. Empty: the task's fields, then ``tokens`` slots
            (``"{text} [T][T][T][T][T]"``); a template without slots gets ``tokens`` slots
            appended after a space.
        tokens: Prompt tokens the policy writes (must match the template's slots if it has some).
        context: The text the policy reads before writing (its fixed input).
        vocabulary: Words the policy may write (each must be one token after a space); empty:
            the first ``vocab_size`` plain-word tokens of the model (a space and letters, which
            tokenise back to themselves).
        vocab_size: Size of the default candidate vocabulary.
        exclude: Words never written (the label words are always excluded).
        steps: Training steps in all; the searcher is exhausted after them and the final greedy
            prompt.
        train_examples: Train examples each sampled prompt's reward is averaged over, the same
            number of every class (``train_examples // classes`` each, a fresh slice of shuffled
            per-class streams every step; all of train when it holds fewer).
        mlp_hidden: Width of the policy head's hidden layer.
        learning_rate: Adam's step size for the head.
        prior: Weight of the backbone's own next-token logits in the policy (1: it starts as the
            backbone's distribution over the candidates; 0: uniform, the head alone decides).
        repeats: Whether a prompt may hold a word twice (off: written words are masked).
        entropy: Weight of an entropy bonus in the policy-gradient loss.
        correct_coeff: Reward per unit of probability gap when the prediction is right.
        wrong_coeff: Reward per unit of (negative) gap when it is wrong; larger than
            ``correct_coeff`` so mistakes cost more than hits earn (RLPrompt: 180 and 200 on a
            percentage scale, here 1.8 and 2.0 on probabilities).
        greedy_every: Also ask the greedy prompt every this many steps (0: only at the end).
    """

    template: str = ""
    tokens: int | None = None
    context: str = "Prompt:"
    vocabulary: list[str] = field(default_factory=list)
    vocab_size: int = 3000
    exclude: list[str] = field(default_factory=list)
    steps: int = 40
    train_examples: int = 32
    mlp_hidden: int = 128
    learning_rate: float = 1e-2
    prior: float = 1.0
    repeats: bool = False
    entropy: float = 0.0
    correct_coeff: float = 1.8
    wrong_coeff: float = 2.0
    greedy_every: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vocab_size", "train_examples", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise PromptscoutError(f"rl: '{name}' must be at least 1")
        for name in ("steps", "greedy_every"):
            if getattr(self, name) < 0:
                raise PromptscoutError(f"rl: '{name}' must be 0 or more")
        for name in ("learning_rate", "correct_coeff", "wrong_coeff"):
            if not getattr(self, name) > 0:
                raise PromptscoutError(f"rl: '{name}' must be positive")
        for name in ("entropy", "prior"):
            if getattr(self, name) < 0:
                raise PromptscoutError(f"rl: '{name}' must be 0 or more")
        if not self.context.strip():
            raise PromptscoutError("rl: 'context' must be some text, e.g. 'Prompt:'")
        slots = self.template.count(TRIGGER)
        if self.tokens is not None:
            if self.tokens < 1:
                raise PromptscoutError("rl: 'tokens' must be at least 1")
            if slots and slots != self.tokens:
                raise PromptscoutError(
                    f"rl: 'template' has {slots} [T] slots but 'tokens' is {self.tokens}; "
                    "drop one of them"
                )
        if self.template and not slots:
            self.template += " " + TRIGGER * (self.tokens or DEFAULT_TOKENS)
        if LABEL_SLOT in self.template:
            raise PromptscoutError("rl: 'template' must not hold [P]; the policy needs a causal LM")


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
