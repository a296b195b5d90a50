"""The score cache: a model output, once computed, is never computed again.

Keys are (model fingerprint, label words or generation length, rendered text), so a cached value
is valid wherever the same model reads the same text: in racing's later stages, when a resumed
campaign re-scores the prompt that was in flight, and across prompts that render equal texts.
Values live in the campaign store's ``score_cache`` table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from promptscout.adapter_committee import Member
from promptscout.evaluation.readout import needs_hidden
from promptscout.prompts import Prompt
from promptscout.soft_tensors import tensors_digest

if TYPE_CHECKING:
    from promptscout.store import Store


def cache_key(fingerprint: str, variant: str, text: str) -> str:
    payload = "\x00".join((fingerprint, variant, text)).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:32]


def label_variant(label_words: Sequence[str], soft: str = "") -> str:
    """The cache variant of class scores: the label words, and the soft prompt's digest (its
    texts alone do not say what the model read)."""
    variant = "labels:" + "\x1f".join(label_words)
    return variant + "\x1esoft:" + soft if soft else variant


def committee_variants(label_words: Sequence[str], members: Sequence[Member]) -> list[str]:
    """The cache variants of a committee of adapters' ``members``
    (:mod:`promptscout.adapter_committee`): each member's class scores under its own digest.
    What the committee outputs for a text depends on which example the text renders (the members
    that held it out score it), so its members' outputs, which the text alone determines, are
    what is cached."""
    return [label_variant(label_words, tensors_digest(m.adapter)) for m in members]


HIDDEN_VARIANT = "hidden:scoring"
"""The cache variant of hidden states, float32 as float64: read in the scoring pass
(:meth:`LanguageModel.score_labels_and_hidden`). Named apart from the earlier ``"hidden"``,
computed by a pass of its own, so a resumed store never mixes the two."""


EMBED_VARIANT = "embed:mean"
"""The cache variant of input texts' embeddings (:meth:`LanguageModel.embed`), which choose
nearest-neighbour demonstrations."""


def generation_variant(max_new_tokens: int) -> str:
    return f"generate:{max_new_tokens}"


def prompt_variants(prompt: Prompt, generation: bool, max_new_tokens: int) -> list[str]:
    """The variants a prompt's raw outputs are cached under: its generation length, or its label
    words (and soft prompt), then the hidden states when its readout reads them."""
    if generation:
        return [generation_variant(max_new_tokens)]
    variants = [label_variant(prompt.label_words, prompt.soft)]
    return [*variants, HIDDEN_VARIANT] if needs_hidden(prompt) else variants


class CacheBackend(Protocol):
    """Where entries live: the campaign :class:`~promptscout.store.Store`, or a Ray worker's
    in-memory dictionary."""

    def cached_outputs(self, keys: Sequence[str]) -> dict[str, Any]: ...

    def cache_outputs(self, items: Sequence[tuple[str, Any]]) -> None: ...


class ScoreCache:
    """Model outputs by (fingerprint, variant, text), kept in a campaign store."""

    def __init__(self, store: Store | CacheBackend) -> None:
        self.store = store
        self.hits = 0
        self.misses = 0

    def entries(self, fingerprint: str, variant: str, texts: Sequence[str]) -> dict[str, Any]:
        """The stored entries (cache key -> raw bytes or string) of ``texts``: what a remote
        worker's in-memory cache is seeded with."""
        return self.store.cached_outputs([cache_key(fingerprint, variant, t) for t in texts])

    def add_entries(self, items: Sequence[tuple[str, Any]]) -> None:
        """Keep raw entries (cache key, bytes or string) that a remote worker computed."""
        self.store.cache_outputs(items)

    def get(self, fingerprint: str, variant: str, texts: Sequence[str]) -> list[Any | None]:
        """Cached outputs for ``texts`` (None where absent): float arrays or strings."""
        keys = [cache_key(fingerprint, variant, t) for t in texts]
        found = self.store.cached_outputs(keys)
        values: list[Any | None] = []
        for key in keys:
            raw = found.get(key)
            if raw is None:
                values.append(None)
            elif isinstance(raw, bytes):
                values.append(np.frombuffer(raw, dtype=np.float64).copy())
            else:
                values.append(raw)
        hits = sum(v is not None for v in values)
        self.hits += hits
        self.misses += len(values) - hits
        return values

    def put(self, fingerprint: str, variant: str, texts: Sequence[str], outputs: Any) -> None:
        """Remember ``outputs`` (rows of a float array, or strings) for ``texts``."""
        items = []
        for text, output in zip(texts, outputs, strict=True):
            value = output if isinstance(output, str) else np.asarray(output, np.float64).tobytes()
            items.append((cache_key(fingerprint, variant, text), value))
        self.store.cache_outputs(items)
