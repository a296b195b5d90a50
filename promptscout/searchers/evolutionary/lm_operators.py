"""Operators that ask the campaign's instruct model to rewrite instructions (EvoPrompt style).

The model paraphrases one phrase, or crosses two instructions into a new one. A 135M model
often answers with something else (a label, an empty line, a repeat of the input, a sentence cut
off by the token limit), so every answer is cleaned and checked
(:func:`~promptscout.searchers.written_text.clean`); an unusable
answer returns None and the caller falls back to a symbolic operator. Answers are cached by the
exact text the model read, and the cache is part of the searcher's saved state, so a resumed
campaign never asks the model again for what it already answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from promptscout.searchers.written_text import clean

if TYPE_CHECKING:
    from promptscout.model import LanguageModel

__all__ = ["CROSS", "PARAPHRASE", "LMOperators", "clean"]

PARAPHRASE = "Rewrite this instruction in other words: {text}\nRewritten:"
CROSS = (
    "Combine these two instructions into one new instruction.\n"
    "Instruction 1: {first}\nInstruction 2: {second}\nNew instruction:"
)


class LMOperators:
    """Paraphrase and crossover of instructions by the campaign's instruct model.

    Args:
        model: Returns the model (loaded on first use).
        max_new_tokens: Most tokens per answer.
        cache: Model answers by the text it read (the searcher saves it with its state).
    """

    def __init__(
        self,
        model: Callable[[], LanguageModel],
        max_new_tokens: int = 32,
        cache: dict[str, str] | None = None,
    ) -> None:
        self._model = model
        self.max_new_tokens = max_new_tokens
        self.cache: dict[str, str] = cache if cache is not None else {}
        self.stats = {"used": 0, "fallback": 0}

    def _answer(self, text: str) -> str:
        if text not in self.cache:
            self.cache[text] = self._model().generate([text], self.max_new_tokens)[0]
        return self.cache[text]

    def _count(self, result: str | None) -> str | None:
        self.stats["used" if result is not None else "fallback"] += 1
        return result

    def paraphrase(self, phrase: str) -> str | None:
        """The phrase in other words, or None if the answer is unusable."""
        return self._count(clean(self._answer(PARAPHRASE.format(text=phrase)), [phrase]))

    def cross(self, first: str, second: str) -> str | None:
        """A new instruction combining two, or None if the answer is unusable."""
        answer = self._answer(CROSS.format(first=first, second=second))
        return self._count(clean(answer, [first, second]))

    def state(self) -> dict[str, Any]:
        return {"cache": dict(self.cache), "stats": dict(self.stats)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.cache = dict(state.get("cache", {}))
        self.stats = {"used": 0, "fallback": 0, **state.get("stats", {})}
