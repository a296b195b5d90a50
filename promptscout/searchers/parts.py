"""Prompt parts: the pools that the random, Bayesian and evolutionary searchers compose
prompts from, and the helpers they share.

A composed prompt is an instruction, demonstrations, then ``"<field label>: {field}"`` for each
input field and an answer cue, joined by a separator (:func:`compose_template`), with one label
word per class.

Example:
    >>> from promptscout.searchers.parts import compose_template
    >>> compose_template({"text": "Review"}, "Sentiment:", "\\n")
    'Review: {text}\\nSentiment:'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.options import OptionError, option, require_non_negative
from promptscout.prompts import CALIBRATIONS, VERBALIZERS
from promptscout.searchers.base import SearchContext, SearcherConfig
from promptscout.tasks import Task

# Why nearest-neighbour demonstrations keep a campaign on the local evaluator.
NEAREST_LOCAL = (
    "nearest-neighbour demonstrations are chosen by the model's hidden states in the local "
    "evaluator"
)

DEFAULT_INSTRUCTIONS = [
    "",
    "Classify the text.",
    "Read the text and answer with one word.",
    "Choose the label that best describes the text.",
    "What is the category of the following text?",
]
DEFAULT_FIELD_LABELS = ["", "Text", "Input", "Review", "Sentence"]
DEFAULT_CUES = ["Answer:", "Label:", "Category:", "Sentiment:", "It was", "This is"]
DEFAULT_SEPARATORS = ["\n", " "]
POOLS = ("instructions", "field_labels", "cues", "separators")


def compose_template(field_labels: dict[str, str], cue: str, separator: str) -> str:
    """``"<label>: {field}"`` per input field (the bare ``{field}`` for an empty label), then the
    answer cue, joined by ``separator``; shared by the searchers that compose prompts."""
    blocks = [
        f"{label}: {{{name}}}" if label else f"{{{name}}}" for name, label in field_labels.items()
    ]
    return separator.join([*blocks, cue] if cue else blocks)


@dataclass
class PromptParts(SearcherConfig):
    """The pools of prompt parts a composing searcher draws from (searcher configs inherit it):
    a composed template is ``"<field label>: {field}"`` per input field and a cue, joined by a
    separator; the instruction and demonstrations go before it."""

    renamed_options: ClassVar[dict[str, str]] = {"label_words": "label_word_candidates"}

    instructions: list[str] = option(
        list(DEFAULT_INSTRUCTIONS), help='Instruction pool ("" means none).'
    )
    field_labels: list[str] = option(
        list(DEFAULT_FIELD_LABELS),
        help='Labels put before each input field ("" means the bare field).',
    )
    cues: list[str] = option(
        list(DEFAULT_CUES), help="Answer cues ending the prompt (the label word follows them)."
    )
    separators: list[str] = option(
        list(DEFAULT_SEPARATORS), help="Separators between the field blocks and the cue."
    )
    label_word_candidates: list[list[str]] = option(
        [],
        help='Candidate words per class, e.g. [["bad", "awful"], ["good", "great"]] (default: '
        "the campaign's label words only).",
    )
    max_demos: int = option(0, help="Most demonstrations in a prompt (0: zero-shot only).")
    label_word_search: int = option(
        0,
        help="Words per class a probe on the training examples proposes from the model's "
        "vocabulary, added to the candidates (0: off; in-process models only).",
    )

    def check_parts(self, needed: Sequence[str] = POOLS) -> None:
        """Raise :class:`OptionError` if a needed pool is empty or ``max_demos`` is negative."""
        for name in needed:
            if not getattr(self, name):
                raise OptionError(name, "must not be empty")
        counts = ("max_demos", "label_word_search", "nearest_demos")
        require_non_negative(self, [name for name in counts if hasattr(self, name)])

    def reads_internals(self) -> bool:
        return (
            self.label_word_search > 0
            or getattr(self, "nearest_demos", 0) > 0
            or "linear" in getattr(self, "readouts", ())
        )

    def needs_local_evaluator(self) -> tuple[str, str] | None:
        return ("nearest_demos", NEAREST_LOCAL) if getattr(self, "nearest_demos", 0) else None

    def uses_proposed_words(self, words: Sequence[str], context: SearchContext) -> bool:
        """Whether ``words`` hold one that label-word search proposed (picked with the training
        labels) rather than one the campaign or ``label_word_candidates`` gave."""
        given = {w for ws in self.label_word_candidates for w in ws} | set(context.label_words)
        return bool(self.label_word_search) and any(w not in given for w in words)

    def label_probe_ids(self, context: SearchContext) -> tuple[str, ...]:
        """The training examples label-word search reads (half of each class, seeded with the
        searcher's seed; see :func:`~promptscout.searchers.label_search.probe_ids`)."""
        from promptscout.searchers.label_search import probe_ids

        return probe_ids(context.task, context.seed) if self.label_word_search else ()

    def probe_template(self, context: SearchContext) -> str:
        """The template label-word search probes with: the first non-empty field label before
        each input field, the first cue and the first separator."""
        label = next((f for f in self.field_labels if f), "")
        labels = dict.fromkeys(context.task.input_fields, label)
        return compose_template(labels, self.cues[0] if self.cues else "", self.separators[0])

    def word_choices(
        self, searcher: str, context: SearchContext, probe_template: str = ""
    ) -> list[list[str]]:
        """Label-word candidates per class: ``label_word_candidates`` (or the campaign's words),
        then ``label_word_search`` words per class that a probe with ``probe_template`` proposes
        (:mod:`promptscout.searchers.label_search`; default: :meth:`probe_template`)."""
        task, candidates = context.task, self.label_word_candidates
        if candidates and len(candidates) != task.num_classes:
            raise PromptscoutError(
                f"{searcher} searcher: 'label_word_candidates' has {len(candidates)} lists but "
                f"task '{task.name}' has {task.num_classes} classes; give candidates for each class"
            )
        words = [list(ws) for ws in candidates] or [[w] for w in context.label_words]
        if any(not ws for ws in words):
            raise PromptscoutError(f"{searcher} searcher: every class needs a label word candidate")
        if self.label_word_search:
            from promptscout.searchers.label_search import propose_label_words

            taken = [w for ws in words for w in ws]
            found = propose_label_words(
                context.model(),
                task,
                probe_template or self.probe_template(context),
                self.label_word_search,
                taken,
                read=self.label_probe_ids(context),
            )
            words = [ws + new for ws, new in zip(words, found, strict=True)]
        return words


def balanced_demo_pool(context: SearchContext, size: int) -> list[str]:
    """Up to ``size`` training example ids, shuffled per class (seeded) and interleaved so the
    pool is class-balanced; one shuffled list for generation tasks."""
    rng = np.random.default_rng([context.seed, 7])
    return balanced_draw(context.task, rng, size)


def balanced_draw(
    task: Task, rng: np.random.Generator, size: int, exclude: str | None = None
) -> list[str]:
    """Up to ``size`` training example ids but ``exclude``: each class's ids shuffled with
    ``rng`` and interleaved, classes in label order, so any prefix is class-balanced; one
    shuffled list for generation tasks."""
    by_label: dict[str, list[str]] = {}
    for example in task.train:
        if example.id != exclude:
            by_label.setdefault(str(example.label), []).append(example.id)
    groups = [list(rng.permutation(ids)) for _, ids in sorted(by_label.items())]
    if task.kind != "classification":
        groups = [list(rng.permutation([e.id for e in task.train if e.id != exclude]))]
    pool = [
        str(ids[i])
        for i in range(max(map(len, groups), default=0))
        for ids in groups
        if i < len(ids)
    ]
    return pool[:size]


def check_initial_tables(tables: object, keys: Sequence[str], example: str) -> None:
    """Raise a one-line :class:`OptionError` on ``initial`` unless it is a list of tables whose
    keys are all among ``keys`` (``example`` shows one in TOML)."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise OptionError("initial", f"must be a list of tables such as [{example}]")
    for table in tables:
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise OptionError("initial", f"has no key '{unknown[0]}'; keys: {', '.join(keys)}")


READOUTS = ("", *CALIBRATIONS, *VERBALIZERS)

READOUTS_HELP = (
    'Readouts to try per candidate: "" (the label words\' scores), contextual | domain | batch '
    "(calibrated), linear (a verbalizer fitted on the training examples)."
)


NEAREST_HELP = (
    "When above 0, a prompt may show, instead of fixed demonstrations, this many nearest "
    "training examples of each input (by the model's hidden states; in-process models, local "
    "evaluator)."
)


def check_readouts(readouts: Sequence[str]) -> None:
    """Raise :class:`OptionError` on ``readouts`` unless it is a non-empty list of known ones."""
    unknown = [r for r in readouts if r not in READOUTS]
    if not readouts or unknown:
        choices = ", ".join(repr(r) for r in READOUTS)
        raise OptionError("readouts", f"must be a non-empty list of {choices}, got {readouts!r}")


def readout_fields(readout: str) -> dict[str, str]:
    """The :class:`~promptscout.prompts.Prompt` fields of a readout name."""
    return {"verbalizer": readout} if readout in VERBALIZERS else {"calibration": readout}
