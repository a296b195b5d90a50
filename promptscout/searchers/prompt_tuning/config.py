"""The soft-prompt searcher's options."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from promptscout.options import OptionError, option, require_non_negative, require_positive
from promptscout.searchers.base import SearcherConfig
from promptscout.soft_tensors import INIT_MODES, PARAMETRIC_MODES, PROMPT_VECTOR_STEP


@dataclass
class SoftConfig(SearcherConfig):
    """Options of the soft-prompt searcher.

    ``init = "text"`` starts the vectors at the embeddings of ``init_text``'s tokens (the rest
    as ``"vocab"``), ``"vocab"`` at embeddings of random common tokens, ``"random"`` at noise of
    the embeddings' scale. ``parametric = "final_norm"`` also trains the final norm's weights,
    which then belong to the prompt. One soft prompt is asked for per round (two with
    ``project``, which raises ``batch_size`` to 2).
    """

    renamed_options: ClassVar[dict[str, str]] = {"lr": "learning_rate"}

    template: str = option(
        "{text}", help="The discrete part after the vectors, with {field} placeholders."
    )
    label_words: list[str] = option(
        [], help="One word per class (default: the campaign's label words)."
    )
    vectors: int = option(20, help="Number of learned vectors.")
    init: str = option("text", help='How the vectors start: "text", "vocab" or "random".')
    init_text: str = option(
        "Read the text and answer with the correct label.",
        help='The text whose token embeddings start the vectors (init = "text").',
    )
    learning_rate: float = option(PROMPT_VECTOR_STEP, help="Adam's step size.")
    l2: float = option(
        0.0, help="Weight of the squared distance of the trained tensors from their start."
    )
    train_batch: int = option(8, help="Training examples per optimiser step.")
    epochs_per_ask: int = option(1, help="Epochs over the train split between two proposals.")
    max_epochs: int = option(30, help="Stop after this many epochs.")
    patience: int = option(
        3,
        help="Stop after this many proposals in a row that do not improve the dev cross-entropy.",
    )
    parametric: str = option(
        "", help='"" (prompt tuning, the model frozen) or "final_norm" (also train the final norm).'
    )
    project: bool = option(
        False, help="Also propose each round's nearest-token discrete projection."
    )
    batch_size: int = option(1, help="Prompts asked for per round (2 with project).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            self, ("vectors", "train_batch", "epochs_per_ask", "max_epochs", "patience")
        )
        if self.init not in INIT_MODES:
            raise OptionError("init", f"must be one of {', '.join(INIT_MODES)}, got {self.init!r}")
        if self.init == "text" and not self.init_text.strip():
            raise OptionError("init_text", "must not be empty with init = 'text'")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise OptionError(
                "learning_rate", f"must be a positive number, got {self.learning_rate!r}"
            )
        require_non_negative(self, ["l2"])
        if self.project:
            self.batch_size = max(self.batch_size, 2)
        if self.parametric not in PARAMETRIC_MODES:
            raise OptionError("parametric", f'must be "" or "final_norm", got {self.parametric!r}')
