"""The AutoPrompt searcher's options."""

from __future__ import annotations

from dataclasses import dataclass

from promptscout.options import OptionError, option, require_non_negative
from promptscout.prompts import LABEL_SLOT, TRIGGER
from promptscout.searchers.autoprompt.gradients import LOSSES
from promptscout.searchers.base import SearcherConfig

DEFAULT_TRIGGERS = 5


@dataclass
class AutoPromptConfig(SearcherConfig):
    """Options of the AutoPrompt searcher.

    Each asked prompt is the trigger prompt after one accepted swap (an ask runs search steps
    until it has ``batch_size`` of them or the iterations are spent). An empty ``template`` is
    the task's fields, then ``num_triggers`` slots (``"{text} [T][T][T][T][T]"``); a template
    without slots gets ``num_triggers`` slots appended after a space. A step's gradient covers
    ``grad_batch * accumulation_steps`` train examples (at most the train split). The ``"label"``
    loss is minus the log-probability of the gold label word, as in the paper; ``"class"``
    normalises it over the classes' label words (the prompt's cross-entropy); the gradient and
    the re-scoring both use it. ``label_search`` follows Shin et al., section 2.2.
    """

    batch_size: int = option(2, help="Prompts asked for per round, each after one accepted swap.")
    template: str = option(
        "",
        help="Text with {field} placeholders and [T] trigger slots, optionally a [P] label slot "
        "(masked LMs); empty: the fields, then num_triggers slots.",
    )
    num_triggers: int | None = option(
        None,
        help="Slots added to a template without any (default 5); must match the template's "
        "slots if it has some.",
    )
    initial_trigger: str = option("the", help="The word every slot starts as (one token).")
    candidates: int = option(16, help="Tokens re-scored per step: the top k by the gradient score.")
    grad_batch: int = option(16, help="Train examples per forward/backward pass.")
    accumulation_steps: int = option(1, help="Passes whose gradients are summed per step.")
    eval_examples: int = option(
        16, help="Fresh train examples the candidates are re-scored on, per step."
    )
    iterations: int = option(
        50, help="Search steps in all (one slot each); the searcher is exhausted after them."
    )
    loss: str = option(
        "label",
        help='"label" (minus the gold label word\'s log-probability) or "class" (normalised '
        "over the label words).",
    )
    filter_special: bool = option(True, help="Never use special or added tokens as triggers.")
    filter_label_words: bool = option(
        True, help="Never use a label word (or its token) as a trigger."
    )
    ascii_only: bool = option(False, help="Only tokens whose text is printable ASCII.")
    exclude: list[str] = option(
        [], help="Words never used as triggers (compared stripped and lower-cased)."
    )
    label_search: bool = option(
        False,
        help="Choose the label words first, one per class, by a linear probe on the hidden "
        "state at the prediction position (off: the campaign's).",
    )
    label_search_candidates: int = option(
        200, help="Tokens per class checked, best probe score first, for being one token."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in (
            "candidates",
            "grad_batch",
            "accumulation_steps",
            "eval_examples",
            "label_search_candidates",
        ):
            if getattr(self, name) < 1:
                raise OptionError(name, "must be at least 1")
        require_non_negative(self, ["iterations"])
        if self.loss not in LOSSES:
            raise OptionError("loss", f"must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not self.initial_trigger.strip():
            raise OptionError("initial_trigger", "must be a word, e.g. 'the'")
        slots = self.template.count(TRIGGER)
        if self.num_triggers is not None:
            if self.num_triggers < 1:
                raise OptionError("num_triggers", "must be at least 1")
            if slots and slots != self.num_triggers:
                clash = (
                    f"'template' has {slots} [T] slots but 'num_triggers' is {self.num_triggers}"
                )
                raise OptionError("num_triggers", clash, f"{clash}; drop one of them")
        if self.template and not slots:
            self.template += " " + TRIGGER * (self.num_triggers or DEFAULT_TRIGGERS)
        if self.template.count(LABEL_SLOT) > 1:
            raise OptionError("template", "has more than one [P] slot")
