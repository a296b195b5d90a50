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
from promptscout.options import OptionError, option
from promptscout.searchers.base import SearchContext, SearcherConfig

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

    def check_parts(self, needed: Sequence[str] = POOLS) -> None:
        """Raise :class:`OptionError` if a needed pool is empty or ``max_demos`` is negative."""
        for name in needed:
            if not getattr(self, name):
                raise OptionError(name, "must not be empty")
        if self.max_demos < 0:
            raise OptionError("max_demos", "must be 0 or more")

    def word_choices(self, searcher: str, context: SearchContext) -> list[list[str]]:
        """Label-word candidates per class: ``label_word_candidates``, or the campaign's words."""
        task, candidates = context.task, self.label_word_candidates
        if candidates and len(candidates) != task.num_classes:
            raise PromptscoutError(
                f"{searcher} searcher: 'label_word_candidates' has {len(candidates)} lists but "
                f"task '{task.name}' has {task.num_classes} classes; give candidates for each class"
            )
        words = [list(ws) for ws in candidates] or [[w] for w in context.label_words]
        if any(not ws for ws in words):
            raise PromptscoutError(f"{searcher} searcher: every class needs a label word candidate")
        return words


def balanced_demo_pool(context: SearchContext, size: int) -> list[str]:
    """Up to ``size`` training example ids, shuffled per class (seeded) and interleaved so the
    pool is class-balanced; one shuffled list for generation tasks."""
    rng = np.random.default_rng([context.seed, 7])
    by_label: dict[str, list[str]] = {}
    for example in context.task.train:
        by_label.setdefault(str(example.label), []).append(example.id)
    groups = [list(rng.permutation(ids)) for _, ids in sorted(by_label.items())]
    if context.task.kind != "classification":
        groups = [list(rng.permutation([e.id for e in context.task.train]))]
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
