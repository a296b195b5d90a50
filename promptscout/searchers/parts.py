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
from dataclasses import dataclass, field

import numpy as np

from promptscout.errors import PromptscoutError
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
    """The pools of prompt parts a composing searcher draws from (searcher configs inherit it).

    Attributes:
        instructions: Instruction pool ("" means none).
        field_labels: Labels put before each input field ("" means the bare field).
        cues: Answer cues ending the prompt (the label word follows them).
        separators: Separators between field blocks and the cue.
        label_words: Candidate words per class (``[[neg1, neg2], [pos1, pos2]]``); default: the
            campaign's label words only.
        max_demos: Largest number of demonstrations (0 = zero-shot only).
    """

    instructions: list[str] = field(default_factory=lambda: list(DEFAULT_INSTRUCTIONS))
    field_labels: list[str] = field(default_factory=lambda: list(DEFAULT_FIELD_LABELS))
    cues: list[str] = field(default_factory=lambda: list(DEFAULT_CUES))
    separators: list[str] = field(default_factory=lambda: list(DEFAULT_SEPARATORS))
    label_words: list[list[str]] = field(default_factory=list)
    max_demos: int = 0

    def check_parts(self, searcher: str, needed: Sequence[str] = POOLS) -> None:
        """Raise a one-line error naming ``searcher`` if a needed pool is empty or
        ``max_demos`` is negative."""
        for name in needed:
            if not getattr(self, name):
                raise PromptscoutError(f"{searcher} searcher: '{name}' must not be empty")
        if self.max_demos < 0:
            raise PromptscoutError(f"{searcher} searcher: 'max_demos' must be 0 or more")

    def word_choices(self, searcher: str, context: SearchContext) -> list[list[str]]:
        """Label-word candidates per class: ``label_words``, or the campaign's words."""
        task = context.task
        if self.label_words and len(self.label_words) != task.num_classes:
            raise PromptscoutError(
                f"{searcher} searcher: 'label_words' has {len(self.label_words)} lists but task "
                f"'{task.name}' has {task.num_classes} classes; give candidates for each class"
            )
        words = [list(ws) for ws in self.label_words] or [[w] for w in context.label_words]
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
