"""The language-model interface every backend implements.

A :class:`LanguageModel` answers three questions for the rest of promptscout: how likely is each
label word after this prompt (:meth:`~LanguageModel.score_labels`), what does the model write
after it (:meth:`~LanguageModel.generate`), and how many tokens is this (:meth:`tokenize`).
Everything above this package sees plain Python and NumPy; torch stays inside ``model/``. The
Hugging Face backends share their plumbing in :mod:`promptscout.model.hf`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from promptscout.errors import PromptscoutError

if TYPE_CHECKING:
    import torch


class LanguageModel(ABC):
    """A language model that scores label words after prompts and generates text.

    Attributes:
        name: what the user passed to :func:`~promptscout.model.load_model` (the embedded
            model's name, a Hugging Face name, or a folder).
        kind: ``"causal"``, ``"masked"`` or ``"served"`` (behind an OpenAI-compatible server).
        max_length: the context size in tokens; longer inputs are cut from the left.
        tokens_forwarded: running count of the tokens of the sequences scored or generated, each
            counted as if it ran alone (padding, batching and shared-prefix reuse do not change
            it): a stable cost measure for budgets; callers read differences before and after a
            call.
        tokens_computed: running count of the (non-padding) token positions actually run
            through the network; below ``tokens_forwarded`` when prefixes are shared.
        flops: running estimate of the floating-point operations of the forward passes actually
            run (padding excluded): ``2 * body_params`` per computed token, plus
            ``4 * layers * heads * head_dim`` per (token, attended position) pair, plus
            ``2 * hidden * vocab`` per output-head row (see
            :func:`~promptscout.model.compute.flop_rates`).
        batch_size: how many sequences go through the network at once (short sequences, such as
            the suffixes after a shared prefix, are batched more at a time).
        completion_tokens: running count of the tokens a served model wrote back (from its
            ``usage``; generation in-process counts into ``tokens_forwarded``).
        chat: prompts reach this model as chat messages (:func:`~promptscout.prompts.chat_text`).
    """

    name: str
    kind: str
    max_length: int
    tokens_forwarded: int
    tokens_computed: int
    flops: int
    batch_size: int
    completion_tokens: int = 0  # tokens a served model wrote (its usage); 0 in-process
    chat: bool = False  # True where prompts are sent as chat messages (a served model's option)

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A stable hex id of the model's identity (class, config, dtype, weights checksum).

        Equal across reloads of the same weights; use it to key score caches.
        """

    @abstractmethod
    def score_labels(self, texts: Sequence[str], label_words: Sequence[str]) -> np.ndarray:
        """Log-probability of each label word after each text.

        Args:
            texts: rendered prompts.
            label_words: one word (or phrase) per class; placed after each text with
                :func:`~promptscout.prompts.continuation`.

        Returns:
            float64 array ``[len(texts), len(label_words)]``: ``log P(word | text)`` normalised
            over the whole vocabulary; a word of several tokens gets the sum of its tokens'
            log-probabilities. Rows are in the order of ``texts``.
        """

    def score_labels_soft(
        self, texts: Sequence[str], label_words: Sequence[str], soft: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """:meth:`score_labels` with a soft prompt: learned vectors (``soft["prefix"]``,
        ``[n, hidden]``) placed before each text's embeddings, after any BOS, and optionally
        replaced final-norm weights (``soft["final_norm"]``); see
        :mod:`promptscout.soft_tensors` (the tensors) and :mod:`promptscout.model.soft_input`
        (the forward pass).

        Raises:
            PromptscoutError: the backend cannot score soft prompts (only causal LMs can).
        """
        raise PromptscoutError(
            f"model '{self.name}' ({self.kind}) cannot score soft prompts; use a causal LM"
        )

    def hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        """The final hidden state where each text's label word is predicted: what the output
        head reads there (white-box access, for learned verbalizers and probes).

        Returns:
            float32 array ``[len(texts), hidden]``, rows in the order of ``texts``.

        Raises:
            PromptscoutError: the backend exposes no hidden states (e.g. a served model).
        """
        raise PromptscoutError(
            f"model '{self.name}' exposes no hidden states; learned verbalizers need an "
            "in-process Hugging Face model"
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's embedding: the mean of the model's final hidden states over its tokens
        (white-box access, for nearest-neighbour demonstrations).

        Returns:
            float32 array ``[len(texts), hidden]``.

        Raises:
            PromptscoutError: the backend exposes no hidden states (e.g. a served model).
        """
        raise PromptscoutError(
            f"model '{self.name}' exposes no hidden states; nearest-neighbour demonstrations "
            "need an in-process Hugging Face model"
        )

    def score_labels_and_hidden(
        self, texts: Sequence[str], label_words: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score_labels` and :meth:`hidden_states` of the same texts (what a learned
        verbalizer reads); backends that can read both in one pass override it."""
        return self.score_labels(texts, label_words), self.hidden_states(texts)

    def next_token_log_probs(self, texts: Sequence[str]) -> np.ndarray:
        """The log-probability of every vocabulary token where each text's label word is
        predicted (white-box access: label-word search reads it).

        Returns:
            float32 array ``[len(texts), vocabulary]``.

        Raises:
            PromptscoutError: the backend gives no full next-token distribution.
        """
        raise PromptscoutError(
            f"model '{self.name}' gives no next-token distribution; label-word search needs an "
            "in-process Hugging Face model"
        )

    def token_text(self, token: int) -> str:
        """The text of one vocabulary token (with its leading space, if it has one)."""
        raise PromptscoutError(f"model '{self.name}' exposes no vocabulary")

    @abstractmethod
    def generate(
        self,
        texts: Sequence[str],
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """Continuation of each text: only the new text, special tokens removed.

        Greedy at ``temperature`` 0; sampled above it, deterministic given ``seed`` (the call's
        texts are different draws, so the same text twice in one call gives two samples).

        Raises:
            PromptscoutError: the model cannot generate (a masked LM).
        """

    @property
    def takes_chat(self) -> bool:
        """Whether a :func:`~promptscout.prompts.chat_text` prompt reaches this model as chat
        messages (a tokenizer chat template in-process, ``chat`` on a served model)."""
        return self.chat

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text``, without special tokens."""
        return len(self.tokenize(text))

    @abstractmethod
    def input_embeddings(self) -> torch.Tensor:
        """The ``[vocab, hidden]`` input embedding matrix (white-box access; do not modify)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"
