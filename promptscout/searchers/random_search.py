"""Random search: sample prompts uniformly from a declared space of prompt parts.

A sampled prompt is ``instruction`` + demonstrations + ``"<field label>: {field}"`` for each input
field, then the answer cue, joined by a sampled separator; label words are drawn per class.
It is the baseline every smarter searcher must beat at the same budget.

Example:
    >>> from promptscout.searchers.random_search import RandomConfig, RandomSearcher
    >>> from promptscout.searchers.base import SearchContext
    >>> from promptscout.tasks import load_task
    >>> task = load_task("sst-2")
    >>> config = RandomConfig(cues=["Sentiment:", "It was"], max_demos=1)
    >>> searcher = RandomSearcher(config, SearchContext(task, task.label_words, seed=0))
    >>> len(searcher.ask(4))
    4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from promptscout.options import option
from promptscout.prompts import Prompt
from promptscout.searchers.base import SearchContext, Searcher

# The default pools and compose_template moved to parts.py; imported here for old imports.
from promptscout.searchers.parts import (  # noqa: F401
    DEFAULT_CUES,
    DEFAULT_FIELD_LABELS,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_SEPARATORS,
    NEAREST_HELP,
    READOUTS_HELP,
    PromptParts,
    check_readouts,
    compose_template,
    readout_fields,
)


@dataclass
class RandomConfig(PromptParts):
    """The space random search samples from: the pools of
    :class:`~promptscout.searchers.parts.PromptParts` (instructions, field labels, cues,
    separators, label-word candidates, ``max_demos``), plus ``max_tries``."""

    max_tries: int = option(
        50, help="Draws per asked prompt before giving up on finding an unseen one."
    )
    readouts: list[str] = option([""], help=READOUTS_HELP)
    nearest_demos: int = option(0, help=NEAREST_HELP)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_parts()
        check_readouts(self.readouts)


class RandomSearcher(Searcher):
    """Uniform sampling over :class:`RandomConfig`'s space, never proposing a prompt twice."""

    type_name = "random"
    config_class = RandomConfig
    config: RandomConfig

    def __init__(self, config: RandomConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        self._word_choices = config.word_choices("random", context)
        self._rng = np.random.default_rng(context.seed)
        self._seen: set[str] = set()
        self._exhausted = False

    def _pick(self, options: list[str]) -> str:
        return options[int(self._rng.integers(len(options)))]

    def sample(self) -> Prompt | None:
        """One prompt drawn from the space (may repeat an earlier one); None if the drawn label
        words collide across classes."""
        cfg, task = self.config, self.context.task
        separator = self._pick(cfg.separators)
        labels = {name: self._pick(cfg.field_labels) for name in task.input_fields}
        template = compose_template(labels, self._pick(cfg.cues), separator)
        words = tuple(self._pick(choices) for choices in self._word_choices)
        if len(set(words)) < len(words):
            return None
        # Drawn only when on, so a campaign without them samples as before.
        nearest = cfg.nearest_demos if cfg.nearest_demos and self._rng.integers(2) else 0
        n_demos = int(self._rng.integers(cfg.max_demos + 1)) if task.train and not nearest else 0
        picked = self._rng.choice(len(task.train), size=n_demos, replace=False) if n_demos else []
        demos = tuple(task.train[int(i)].id for i in picked)
        # Drawn only when there is a choice, so a campaign without readouts samples as before.
        readout = self._pick(cfg.readouts) if len(cfg.readouts) > 1 else cfg.readouts[0]
        return Prompt(
            template,
            words,
            instruction=self._pick(cfg.instructions),
            demos=demos,
            separator="\n\n" if demos or nearest else "\n",
            **readout_fields(readout),
            nearest_demos=nearest if task.train else 0,
        )

    def ask(self, n: int) -> list[Prompt]:
        batch: list[Prompt] = []
        for _ in range(n):
            for _ in range(self.config.max_tries):
                prompt = self.sample()
                if prompt is not None and prompt.key not in self._seen:
                    break
            else:
                self._exhausted = True  # the space looks used up
                break
            self._seen.add(prompt.key)
            batch.append(prompt)
        return batch

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def save(self) -> dict[str, Any]:
        return {
            "rng": self._rng.bit_generator.state,
            "seen": sorted(self._seen),
            "exhausted": self._exhausted,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._seen = set(state["seen"])
        self._exhausted = bool(state["exhausted"])
