"""Manual search: score the hand-written prompts you list, every combination once.

Example:
    >>> from promptscout.searchers.manual import ManualConfig, ManualSearcher
    >>> from promptscout.searchers.base import SearchContext
    >>> from promptscout.tasks import load_task
    >>> task = load_task("sst-2")
    >>> config = ManualConfig(templates=["Review: {text}\\nSentiment:", "{text} It was"],
    ...                       label_word_sets=[["negative", "positive"], ["terrible", "great"]])
    >>> searcher = ManualSearcher(config, SearchContext(task, task.label_words, seed=0))
    >>> len(searcher.ask(10))
    4
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

from promptscout.options import OptionError, option
from promptscout.prompts import Prompt
from promptscout.searchers.base import SearchContext, Searcher, SearcherConfig
from promptscout.searchers.parts import (
    NEAREST_LOCAL,
    READOUTS_HELP,
    check_readouts,
    readout_fields,
)


@dataclass
class ManualConfig(SearcherConfig):
    """Options of the manual searcher: every (template, label words, instruction, readout)
    combination is asked for once, in that order."""

    renamed_options: ClassVar[dict[str, str]] = {"label_words": "label_word_sets"}

    templates: list[str] = option([], help="Templates with {field} placeholders (required).")
    label_word_sets: list[list[str]] = option(
        [],
        help="Alternative label-word lists, one word per class each (default: the campaign's "
        "label words).",
    )
    instructions: list[str] = option([""], help='Alternative instructions ("" for none).')
    readouts: list[str] = option([""], help=READOUTS_HELP)
    nearest_demos: list[int] = option(
        [0],
        help="Numbers of nearest training examples each prompt is tried with as demonstrations "
        "(0: none; by the model's hidden states, in-process models and local evaluator).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.templates:
            raise OptionError(None, "the manual searcher needs 'templates', a list of templates")
        check_readouts(self.readouts)
        if not self.nearest_demos or any(k < 0 for k in self.nearest_demos):
            raise OptionError("nearest_demos", "must be a non-empty list of numbers 0 or more")

    def reads_internals(self) -> bool:  # learned verbalizers, nearest demos: hidden states
        return "linear" in self.readouts or self.needs_local_evaluator() is not None

    def needs_local_evaluator(self) -> tuple[str, str] | None:
        return ("nearest_demos", NEAREST_LOCAL) if any(self.nearest_demos) else None


class ManualSearcher(Searcher):
    """Asks for each (template, label words, instruction) combination once, in order."""

    type_name = "manual"
    config_class = ManualConfig
    config: ManualConfig

    def __init__(self, config: ManualConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        label_sets = [tuple(ws) for ws in config.label_word_sets] or [context.label_words]
        self._prompts = [
            Prompt(
                template,
                label_words,
                instruction,
                **readout_fields(readout),
                nearest_demos=nearest if context.task.train else 0,
            )
            for template, label_words, instruction, readout, nearest in itertools.product(
                config.templates,
                label_sets,
                config.instructions,
                config.readouts,
                config.nearest_demos,
            )
        ]
        for prompt in self._prompts:
            prompt.check_task(context.task)
        self._next = 0

    def ask(self, n: int) -> list[Prompt]:
        batch = self._prompts[self._next : self._next + n]
        self._next += len(batch)
        return batch

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self._prompts)

    def save(self) -> dict[str, Any]:
        return {"next": self._next}

    def restore(self, state: dict[str, Any]) -> None:
        self._next = int(state["next"])
