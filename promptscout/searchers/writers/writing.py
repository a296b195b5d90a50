"""The proposer's calls: sampled, cached, counted and bounded apart from the search budget.

Every answer is cached by a digest of exactly what was asked (the meta-prompt, how many samples,
temperature, seed, token limit), and the cache is part of the writer's saved state: a resumed
campaign never asks again for what it has, and what it asks again after a kill (the turn whose
state was not saved) comes back the same, because sampling is seeded.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from promptscout.prompts import chat_text

if TYPE_CHECKING:
    from promptscout.model import LanguageModel

USAGE = ("writes", "calls", "tokens", "seconds", "feedback_examples")


class Writer:
    """Asks the proposer to write.

    Args:
        proposer: Returns the proposer model (loaded on first use).
        max_writes: Most answers in all (:attr:`left`).
        max_new_tokens: Most tokens per answer.
        temperature: Sampling temperature (0: greedy, then one answer per meta-prompt).
        chat: Send meta-prompts as one chat message where the proposer takes chat.

    Attributes:
        usage: ``writes`` (answers), ``calls`` (meta-prompts sent), ``tokens`` (read and
            written), ``seconds``; ``feedback_examples``, ``tokens`` and ``seconds`` also count
            what a writer scores for feedback (:meth:`count_scoring`).
    """

    def __init__(
        self,
        proposer: Callable[[], LanguageModel],
        max_writes: int,
        max_new_tokens: int,
        temperature: float,
        chat: bool = True,
    ) -> None:
        self._proposer = proposer
        self.max_writes = max_writes
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.chat = chat
        self.cache: dict[str, list[str]] = {}
        self.usage: dict[str, float] = dict.fromkeys(USAGE, 0)

    @property
    def left(self) -> int:
        """Answers the proposer may still write."""
        return max(0, self.max_writes - int(self.usage["writes"]))

    def write(self, meta_prompt: str, samples: int, seed: int) -> list[str]:
        """Up to ``samples`` answers to ``meta_prompt`` (fewer when :attr:`left` runs out; one
        when greedy, as more would repeat it)."""
        samples = 1 if self.temperature == 0 else samples
        request = [meta_prompt, samples, self.temperature, seed, self.max_new_tokens, self.chat]
        digest = hashlib.sha256(json.dumps(request).encode("utf-8")).hexdigest()[:24]
        if digest in self.cache:
            return list(self.cache[digest])
        samples = min(samples, self.left)
        if samples == 0:
            return []
        model = self._proposer()
        text = meta_prompt
        if self.chat and model.takes_chat:
            text = chat_text([{"role": "user", "content": meta_prompt}])
        before = model.tokens_forwarded + model.completion_tokens
        started = time.perf_counter()
        answers = model.generate(
            [text] * samples, self.max_new_tokens, temperature=self.temperature, seed=seed
        )
        self.usage["seconds"] += time.perf_counter() - started
        self.usage["tokens"] += model.tokens_forwarded + model.completion_tokens - before
        self.usage["writes"] += samples
        self.usage["calls"] += 1
        self.cache[digest] = list(answers)
        return list(answers)

    def count_scoring(self, examples: int, tokens: int, seconds: float) -> None:
        """Count a writer's own scoring of training examples (feedback) into its usage."""
        self.usage["feedback_examples"] += examples
        self.usage["tokens"] += tokens
        self.usage["seconds"] += seconds

    def fits(self, meta_prompt: str) -> bool:
        """Whether ``meta_prompt`` and an answer fit in the proposer's context."""
        model = self._proposer()
        return model.count_tokens(meta_prompt) + self.max_new_tokens <= model.max_length

    def count_tokens(self, text: str) -> int:
        return self._proposer().count_tokens(text)

    def state(self) -> dict[str, Any]:
        return {"cache": dict(self.cache), "usage": dict(self.usage)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.cache = {k: list(v) for k, v in state.get("cache", {}).items()}
        self.usage = {**dict.fromkeys(USAGE, 0), **state.get("usage", {})}
