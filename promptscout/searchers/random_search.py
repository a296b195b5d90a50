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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt
from promptscout.searchers.base import SearchContext, Searcher, SearcherConfig

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


def compose_template(field_labels: dict[str, str], cue: str, separator: str) -> str:
    """``"<label>: {field}"`` per input field (the bare ``{field}`` for an empty label), then the
    answer cue, joined by ``separator``; shared by the random and Bayesian searchers."""
    blocks = [
        f"{label}: {{{name}}}" if label else f"{{{name}}}" for name, label in field_labels.items()
    ]
    return separator.join([*blocks, cue] if cue else blocks)


@dataclass
class RandomConfig(SearcherConfig):
    """The space random search samples from.

    Attributes:
        instructions: Instruction pool ("" means none).
        field_labels: Labels put before each input field ("" means the bare field).
        cues: Answer cues ending the prompt (the label word follows them).
        separators: Separators between field blocks and the cue.
        label_words: Candidate words per class (``[[neg1, neg2], [pos1, pos2]]``); default: the
            campaign's label words only.
        max_demos: Largest number of demonstrations (0 = zero-shot only).
        max_tries: Draws per asked prompt before giving up on finding an unseen one.
    """

    instructions: list[str] = field(default_factory=lambda: list(DEFAULT_INSTRUCTIONS))
    field_labels: list[str] = field(default_factory=lambda: list(DEFAULT_FIELD_LABELS))
    cues: list[str] = field(default_factory=lambda: list(DEFAULT_CUES))
    separators: list[str] = field(default_factory=lambda: list(DEFAULT_SEPARATORS))
    label_words: list[list[str]] = field(default_factory=list)
    max_demos: int = 0
    max_tries: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("instructions", "field_labels", "cues", "separators"):
            if not getattr(self, name):
                raise PromptscoutError(f"random searcher: '{name}' must not be empty")
        if self.max_demos < 0:
            raise PromptscoutError("random searcher: 'max_demos' must be 0 or more")


class RandomSearcher(Searcher):
    """Uniform sampling over :class:`RandomConfig`'s space, never proposing a prompt twice."""

    type_name = "random"
    config_class = RandomConfig
    config: RandomConfig

    def __init__(self, config: RandomConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        task = context.task
        if config.label_words and len(config.label_words) != task.num_classes:
            raise PromptscoutError(
                f"random searcher: 'label_words' has {len(config.label_words)} lists but task "
                f"'{task.name}' has {task.num_classes} classes; give candidates for each class"
            )
        self._word_choices = config.label_words or [[w] for w in context.label_words]
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
        n_demos = int(self._rng.integers(cfg.max_demos + 1)) if task.train else 0
        picked = self._rng.choice(len(task.train), size=n_demos, replace=False) if n_demos else []
        demos = tuple(task.train[int(i)].id for i in picked)
        return Prompt(
            template,
            words,
            instruction=self._pick(cfg.instructions),
            demos=demos,
            separator="\n\n" if demos else "\n",
            metadata={"searcher": self.name},
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

    def state(self) -> dict[str, Any]:
        return {
            "rng": self._rng.bit_generator.state,
            "seen": sorted(self._seen),
            "exhausted": self._exhausted,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._seen = set(state["seen"])
        self._exhausted = bool(state["exhausted"])
