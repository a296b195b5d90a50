"""The AutoPrompt searcher's options."""

from __future__ import annotations

from dataclasses import dataclass, field

from promptscout.errors import PromptscoutError
from promptscout.prompts import LABEL_SLOT, TRIGGER
from promptscout.searchers.autoprompt.gradients import LOSSES
from promptscout.searchers.base import SearcherConfig

DEFAULT_TRIGGERS = 5


@dataclass
class AutoPromptConfig(SearcherConfig):
    """Options of the AutoPrompt searcher.

    Attributes:
        batch_size: Prompts asked for per round; each is the trigger prompt after one accepted
            swap (an ask runs search steps until it has that many or the iterations are spent).
        template: Text with ``{field}`` placeholders and ``[T]`` trigger slots, optionally a
            ``[P]`` label slot (masked LMs). Empty: the task's fields, then ``num_triggers``
            slots (``"{text} [T][T][T][T][T]"``). A template without slots gets
            ``num_triggers`` slots appended after a space.
        num_triggers: Slots to add to a template that has none (default 5); must match the
            template's slots if it has some.
        initial_trigger: The word every slot starts as (it must be one token).
        candidates: Tokens re-scored per step (the top ``k`` by the gradient score).
        grad_batch: Train examples per forward/backward pass.
        accumulation_steps: Passes whose gradients are summed per step (so a step's gradient
            covers ``grad_batch * accumulation_steps`` train examples, at most the train split).
        eval_examples: Fresh train examples the candidates are re-scored on, per step.
        iterations: Search steps in all (one slot each); the searcher is exhausted after them.
        loss: ``"label"`` (minus the log-probability of the gold label word, as in the paper)
            or ``"class"`` (normalised over the classes' label words: the prompt's
            cross-entropy). Both the gradient and the re-scoring use it.
        filter_special: Never use special or added tokens as triggers.
        filter_label_words: Never use a label word (or its token) as a trigger.
        ascii_only: Only tokens whose text is printable ASCII.
        exclude: Words never used as triggers (compared after stripping spaces, lower-cased).
        label_search: Choose the label words first, one per class, from the vocabulary by a
            linear probe trained on the hidden state at the prediction position (Shin et al.,
            section 2.2); off: the campaign's label words.
        label_search_candidates: Tokens per class checked, best probe score first, for being a
            word the model scores as one token.
    """

    batch_size: int = 2
    template: str = ""
    num_triggers: int | None = None
    initial_trigger: str = "the"
    candidates: int = 16
    grad_batch: int = 16
    accumulation_steps: int = 1
    eval_examples: int = 16
    iterations: int = 50
    loss: str = "label"
    filter_special: bool = True
    filter_label_words: bool = True
    ascii_only: bool = False
    exclude: list[str] = field(default_factory=list)
    label_search: bool = False
    label_search_candidates: int = 200

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
                raise PromptscoutError(f"autoprompt: '{name}' must be at least 1")
        if self.iterations < 0:
            raise PromptscoutError("autoprompt: 'iterations' must be 0 or more")
        if self.loss not in LOSSES:
            raise PromptscoutError(
                f"autoprompt: 'loss' must be one of {', '.join(LOSSES)}, got {self.loss!r}"
            )
        if not self.initial_trigger.strip():
            raise PromptscoutError("autoprompt: 'initial_trigger' must be a word, e.g. 'the'")
        slots = self.template.count(TRIGGER)
        if self.num_triggers is not None:
            if self.num_triggers < 1:
                raise PromptscoutError("autoprompt: 'num_triggers' must be at least 1")
            if slots and slots != self.num_triggers:
                raise PromptscoutError(
                    f"autoprompt: 'template' has {slots} [T] slots but 'num_triggers' is "
                    f"{self.num_triggers}; drop one of them"
                )
        if self.template and not slots:
            self.template += " " + TRIGGER * (self.num_triggers or DEFAULT_TRIGGERS)
        if self.template.count(LABEL_SLOT) > 1:
            raise PromptscoutError("autoprompt: 'template' has more than one [P] slot")
