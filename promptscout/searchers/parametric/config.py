"""The PEFT searcher's options."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from promptscout.adapters import PEFT_TYPES
from promptscout.options import OptionError, option, require_non_negative, require_positive
from promptscout.searchers.base import SearcherConfig
from promptscout.searchers.parts import NEAREST_LOCAL
from promptscout.soft_tensors import INIT_MODES, PROMPT_VECTOR_STEP

PROMPT_METHODS = ("prompt_tuning", "prefix_tuning", "p_tuning")
TEMPLATE_DEFAULT = "{text}"
# Training examples the template choice reads at most (class-balanced, seeded): about 40 s for
# 30 candidates with two demonstrations on 2 CPU cores, whatever the size of the train split.
CHOICE_EXAMPLES = 32
# How `templates` are told apart (see PeftSearcherConfig.template_choice); "per_member" chooses
# none: each member of a committee trains one of them.
PER_MEMBER = "per_member"
TEMPLATE_CHOICES = ("loss", "label_mass", PER_MEMBER)
# Step sizes that train each method well from 32 examples on small models (the field's usual
# ranges: prompt vectors move far, LoRA's low-rank updates little; the prompt vectors' step,
# shared with the soft searcher, is explained at soft_tensors.PROMPT_VECTOR_STEP).
DEFAULT_LEARNING_RATES = {
    "prompt_tuning": PROMPT_VECTOR_STEP,
    "prefix_tuning": 0.01,
    "p_tuning": PROMPT_VECTOR_STEP,
    "lora": 0.0005,
}


@dataclass
class PeftSearcherConfig(SearcherConfig):
    """Options of the PEFT searcher (``type = "peft"``).

    ``method`` picks the parametric method: ``prompt_tuning`` (learned input vectors, the model
    frozen), ``prefix_tuning`` (learned keys and values in every layer), ``p_tuning`` (input
    vectors produced by a small trained encoder) or ``lora`` (low-rank updates of the model's
    projections, trained together with the fixed template and label words: prompt-based
    fine-tuning). Options a method does not read are refused when set.
    """

    method: str = option(
        "prompt_tuning", help="The method: prompt_tuning, prefix_tuning, p_tuning or lora."
    )
    template: str = option(
        TEMPLATE_DEFAULT, help="The discrete part of the prompt, with {field} placeholders."
    )
    templates: list[str] = option(
        [],
        help="Candidate templates instead of one: the searcher trains the one template_choice "
        f"prefers, judged by the untrained model on up to {CHOICE_EXAMPLES} training examples "
        '(or, with template_choice = "per_member", each committee member trains one).',
    )
    template_choice: str = option(
        "loss",
        help='How templates are chosen: "loss" (the lowest cross-entropy of the gold label '
        'words, the examples shown as training shows them), "label_mass" (the most '
        "probability on the label words as the next word, zero-shot: the template after which "
        'the model expects these answers; the gold labels do not enter it) or "per_member" (no '
        "choice: with members of 2 or more, member j trains templates[j], cycling, and is "
        "scored in it: the committee pools patterns, as PET's ensembles do).",
    )
    label_words: list[str] = option(
        [], help="One word per class (default: the campaign's label words)."
    )
    virtual_tokens: int = option(
        20, help="Learned virtual tokens (prompt_tuning, prefix_tuning, p_tuning)."
    )
    init: str = option(
        "text",
        help='How virtual tokens start: "text" (init_text\'s tokens), "vocab" or "random".',
    )
    init_text: str = option(
        "Read the text and answer with the correct label.",
        help='The text whose tokens start the virtual tokens (init = "text").',
    )
    demos: int = option(
        0,
        help="Class-balanced training examples (seeded) shown as demonstrations before each "
        "input, in training and in scoring (prompt-based fine-tuning with demonstrations).",
    )
    nearest_demos: int = option(
        0,
        help="When above 0, each input is shown this many of its nearest training examples as "
        "demonstrations instead, in training and in scoring (by the model's hidden states; "
        "local evaluator).",
    )
    resample_demos: bool = option(
        False,
        help="With demos: in training, each example is shown demonstrations drawn afresh every "
        "epoch (class-balanced, from the other training examples); scoring shows the fixed ones.",
    )
    members: int = option(
        1,
        help="Adapters trained side by side, each with its own seed (demonstrations, start, "
        "example order) and early stopping; with 2 or more, the campaign's end pools their "
        "best proposals as one candidate (a committee: the mean of their class probabilities).",
    )
    cross_fit: bool = option(
        False,
        help="With members of 2 or more: the search split is dealt into one class-balanced fold "
        "per member, and each member also trains on the search examples outside its fold, "
        "early-stopped together on the examples each held out (or trained a fixed number of "
        "epochs and proposed once: epochs_per_ask = max_epochs). The committee is one prompt: a "
        "search example is scored by the member that never trained on it, any other example by "
        "every member (the mean of their class probabilities). Each member shows its own "
        "demonstrations; not with nearest_demos.",
    )
    encoder_hidden_size: int = option(128, help="The width of p_tuning's prompt encoder.")
    rank: int = option(8, help="LoRA's rank r.")
    alpha: float = option(16.0, help="LoRA's scale numerator: updates are scaled by alpha / r.")
    target_modules: list[str] = option(
        [],
        help="LoRA's module names (e.g. q_proj, v_proj; default: every linear layer of the "
        "attention and MLP blocks).",
    )
    dropout: float = option(0.0, help="LoRA's dropout, or p_tuning's encoder dropout.")
    learning_rate: float = option(
        0.0,
        help="AdamW's step size (0: the method's default: prompt_tuning 0.003, prefix_tuning "
        "0.01, p_tuning 0.003, lora 0.0005).",
    )
    weight_decay: float = option(0.0, help="AdamW's decoupled weight decay.")
    l2: float = option(
        0.0, help="Weight of the squared distance of the trained tensors from their start."
    )
    train_batch: int = option(8, help="Training examples per step.")
    accumulate: int = option(1, help="Steps whose gradients are summed before an update.")
    epochs_per_ask: int = option(1, help="Epochs over the train split between two proposals.")
    max_epochs: int = option(30, help="Stop after this many epochs.")
    patience: int = option(
        3,
        help="Stop after this many proposals in a row that do not improve the dev cross-entropy.",
    )
    batch_size: int = option(1, help="Prompts asked for per round (one adapter per round).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in PEFT_TYPES:
            raise OptionError(
                "method", f"must be one of {', '.join(PEFT_TYPES)}, got {self.method!r}"
            )
        positive = ("virtual_tokens", "encoder_hidden_size", "rank", "train_batch", "accumulate")
        require_positive(self, (*positive, "epochs_per_ask", "max_epochs", "patience", "members"))
        require_non_negative(self, ("demos", "nearest_demos"))
        if self.demos and self.nearest_demos:
            raise OptionError(
                "nearest_demos", "is set with demos: show fixed or nearest demonstrations, not both"
            )
        if self.cross_fit and self.members < 2:
            raise OptionError("cross_fit", "needs members = 2 or more (one per fold)")
        if self.cross_fit and self.nearest_demos:
            raise OptionError(
                "cross_fit",
                "is set with nearest_demos: a member would find neighbours among the search "
                "examples it trains on, which scoring never shows; use demos",
            )
        if self.resample_demos and not self.demos:
            raise OptionError("resample_demos", "needs demos above 0 (it redraws them)")
        if self.templates and self.template != TEMPLATE_DEFAULT:
            raise OptionError(
                "templates", "is set with template: give one template or the candidates"
            )
        if self.template_choice not in TEMPLATE_CHOICES:
            raise OptionError(
                "template_choice",
                f"must be one of {', '.join(TEMPLATE_CHOICES)}, got {self.template_choice!r}",
            )
        if self.template_choice != "loss" and not self.templates:
            raise OptionError("template_choice", "needs templates (the candidates it chooses from)")
        if self.template_choice == PER_MEMBER and self.members < 2:
            raise OptionError(
                "template_choice", '"per_member" needs members = 2 or more (one template each)'
            )
        if self.init not in INIT_MODES:
            raise OptionError("init", f"must be one of {', '.join(INIT_MODES)}, got {self.init!r}")
        if self.init == "text" and not self.init_text.strip():
            raise OptionError("init_text", "must not be empty with init = 'text'")
        require_non_negative(self, ("learning_rate", "weight_decay", "l2", "dropout", "alpha"))
        if self.dropout >= 1:
            raise OptionError("dropout", f"must be below 1, got {self.dropout!r}")
        if self.alpha == 0:
            raise OptionError("alpha", "must be positive (0 would switch LoRA off)")
        self._refuse_unread()

    def _refuse_unread(self) -> None:
        """Options another method reads, set away from their defaults, are refused: a user who
        sets ``rank`` for prompt tuning believes it does something."""
        readers = {
            "virtual_tokens": PROMPT_METHODS,
            "init": PROMPT_METHODS,
            "init_text": PROMPT_METHODS,
            "encoder_hidden_size": ("p_tuning",),
            "rank": ("lora",),
            "alpha": ("lora",),
            "target_modules": ("lora",),
            "dropout": ("lora", "p_tuning"),
        }
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, methods in readers.items():
            field = fields[name]
            default = (
                field.default_factory() if field.default is dataclasses.MISSING else field.default
            )
            if self.method not in methods and getattr(self, name) != default:
                raise OptionError(
                    name, f"is read by {' and '.join(methods)} only, not by method {self.method!r}"
                )

    def needs_local_evaluator(self) -> tuple[str, str] | None:
        return ("nearest_demos", NEAREST_LOCAL) if self.nearest_demos else None

    def member_options(self, j: int) -> PeftSearcherConfig:
        """The one-adapter options of committee member ``j``: these, with one member and no
        cross-fitting; with ``template_choice = "per_member"``, its own template instead of the
        candidates."""
        if self.template_choice != PER_MEMBER:
            return dataclasses.replace(self, members=1, cross_fit=False)
        own = self.templates[j % len(self.templates)]
        return dataclasses.replace(
            self, members=1, cross_fit=False, templates=[], template_choice="loss", template=own
        )

    @property
    def step_size(self) -> float:
        """The learning rate in use (the method's default when 0)."""
        return self.learning_rate or DEFAULT_LEARNING_RATES[self.method]
