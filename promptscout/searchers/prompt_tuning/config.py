"""The soft-prompt searcher's options."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from promptscout.errors import PromptscoutError
from promptscout.searchers.base import SearcherConfig
from promptscout.soft_tensors import INIT_MODES, PARAMETRIC_MODES


@dataclass
class SoftConfig(SearcherConfig):
    """Options of the soft-prompt searcher.

    Attributes:
        template: The discrete part placed after the vectors, with ``{field}`` placeholders.
        label_words: One word per class (default: the campaign's label words).
        vectors: Number of learned vectors.
        init: ``"text"`` (embeddings of ``init_text``'s tokens, the rest as ``"vocab"``),
            ``"vocab"`` (embeddings of random common tokens) or ``"random"`` (noise of the
            embeddings' scale).
        init_text: The text whose token embeddings start the vectors (``init = "text"``).
        lr: Adam step size.
        l2: Weight of the squared distance of the trained tensors from where they started.
        train_batch: Training examples per optimiser step.
        epochs_per_ask: Epochs over the train split between two proposals.
        max_epochs: Stop after this many epochs.
        patience: Stop after this many proposals in a row that do not improve the dev
            cross-entropy.
        parametric: ``""`` (prompt tuning: the model frozen) or ``"final_norm"`` (the final
            norm's weights are trained too and belong to the prompt).
        project: Also propose each round's nearest-token discrete projection.
        batch_size: One soft prompt per ask (two with ``project``, which raises it to 2).
    """

    template: str = "{text}"
    label_words: list[str] = field(default_factory=list)
    vectors: int = 20
    init: str = "text"
    init_text: str = "Read the text and answer with the correct label."
    lr: float = 0.03
    l2: float = 0.0
    train_batch: int = 8
    epochs_per_ask: int = 1
    max_epochs: int = 30
    patience: int = 3
    parametric: str = ""
    project: bool = False
    batch_size: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vectors", "train_batch", "epochs_per_ask", "max_epochs", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise PromptscoutError(f"{name} must be a positive integer, got {value!r}")
        if self.init not in INIT_MODES:
            raise PromptscoutError(
                f"init must be one of {', '.join(INIT_MODES)}, got {self.init!r}"
            )
        if self.init == "text" and not self.init_text.strip():
            raise PromptscoutError("init = 'text' needs a non-empty init_text")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise PromptscoutError(f"lr must be a positive number, got {self.lr!r}")
        if not (self.l2 >= 0 and math.isfinite(self.l2)):
            raise PromptscoutError(f"l2 must be 0 or more, got {self.l2!r}")
        if self.project:
            self.batch_size = max(self.batch_size, 2)
        if self.parametric not in PARAMETRIC_MODES:
            raise PromptscoutError(
                f'parametric must be "" or "final_norm", got {self.parametric!r}'
            )
