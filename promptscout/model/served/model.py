""":class:`ServedModel`: the :class:`~promptscout.model.base.LanguageModel` of a model behind an
OpenAI-compatible server, scoring label words and generating text through a
:class:`~promptscout.model.served.client.ServerClient`."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.model.base import LanguageModel
from promptscout.model.served.client import ServerClient, map_concurrently
from promptscout.model.served.errors import RefusedError
from promptscout.model.served.options import (
    CHARS_PER_TOKEN,
    DEFAULT_CONTEXT,
    MATCH_CASES,
    MISS_SCORE,
    SERVED_PREFIX,
    ServedOptions,
)
from promptscout.model.served.probe import check_server
from promptscout.model.served.scoring import answer_class, echoed_sum, match_word
from promptscout.model.served.tokens import Tokenizer
from promptscout.prompts import chat_messages, continuation

if TYPE_CHECKING:
    import torch

_T = TypeVar("_T")


class ServedModel(LanguageModel):
    """A model behind an OpenAI-compatible server (see :mod:`promptscout.model.served`).

    Attributes:
        model_id: the id the server lists (the name after ``openai:``).
        options: the :class:`ServedOptions`.
        chat: prompts go to the chat endpoint as messages (from the options).
        base_url: the server's OpenAI-compatible root, without a trailing slash.
        requests: completion requests answered (scoring and generation; the start-up probe and
            tokenizer calls are not counted).
        prompt_tokens, completion_tokens: the tokens the server's ``usage`` reports.
            ``tokens_forwarded`` and ``tokens_computed`` grow by the prompt tokens; ``flops``
            stays 0 (unknown).
        match_counts: ``top_logprobs`` scoring, per (text, word) scored: ``exact`` (a one-token
            word found in the list), ``first_token`` (a word of several tokens, scored by its
            first token), ``floor`` (not in the list).
        last_matches: the case of each (text, word) of the last ``top_logprobs`` call.
        deepened: texts after which no label word was listed, asked again for a deeper list
            (``deep_logprobs``).
        last_answers: the raw answers of the last ``generate`` scoring call.
        unparseable: ``generate`` scoring answers that named no label word.
        max_length: the context size the server reports (vLLM's ``max_model_len``), else 4096.
        tokenizer_endpoint: the server's tokenizer URL (llama.cpp's ``/extras/tokenize``,
            vLLM's ``/tokenize``), or "" when it has none: :meth:`count_tokens` then counts
            ``ceil(characters / 4)``.
    """

    kind = "served"

    def __init__(self, name: str, options: ServedOptions, *, batch_size: int = 16) -> None:
        self.name = name
        self.model_id = name[len(SERVED_PREFIX) :] if name.startswith(SERVED_PREFIX) else name
        if not self.model_id:
            raise PromptscoutError(
                f"model '{name}' names no model: use openai:MODEL_ID (an id the server lists)"
            )
        self.options = options
        self.chat = options.chat
        self.batch_size = batch_size
        self.max_length = DEFAULT_CONTEXT
        self._server = ServerClient(self.model_id, options, self._count_usage)
        self.base_url = self._server.base_url
        self._lock = threading.Lock()
        self._echo_lists = False
        self._deep_allowed = options.deep_logprobs > 0
        self._tokenizer: Tokenizer | None = None
        self._reset_counters()
        self.check()

    @property
    def _client(self) -> Any:
        """The ``openai.OpenAI`` client (for tests that send a raw request)."""
        return self._server.client

    @property
    def tokenizer_endpoint(self) -> str:
        """The server's tokenizer URL, or "" when it has none."""
        return self._tokenizer.endpoint if self._tokenizer is not None else ""

    # -- start-up probe and counters -----------------------------------------------------------

    def check(self) -> None:
        """Check the server once: it answers, lists :attr:`model_id`, accepts the key, and does
        the scoring mode right (see :mod:`promptscout.model.served.probe`); then zero the
        counters.

        Raises:
            PromptscoutError: one line naming what is wrong and the fix.
        """
        facts = check_server(self._server, self.options, self.chat)
        if facts.max_length is not None:
            self.max_length = facts.max_length
        if facts.tokenizer is not None:
            self._tokenizer = facts.tokenizer
        if facts.echo_lists is not None:
            self._echo_lists = facts.echo_lists
        self._reset_counters()

    def counters(self) -> dict[str, Any]:
        """What the server was asked and answered since the start-up check: ``requests``,
        tokens, ``top_logprobs`` match cases (and texts asked again, ``deepened``), ``generate``
        answers that named no label word (``unparseable``)."""
        with self._lock:
            return {
                "requests": self.requests,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "match_counts": dict(self.match_counts),
                "deepened": self.deepened,
                "unparseable": self.unparseable,
            }

    def _reset_counters(self) -> None:
        self.requests = 0
        self.deepened = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.tokens_forwarded = 0
        self.tokens_computed = 0
        self.flops = 0
        self.unparseable = 0
        self.match_counts = dict.fromkeys(MATCH_CASES, 0)
        self.last_matches: list[list[str]] = []
        self.last_answers: list[str] = []

    def _count_usage(self, prompt: int, completion: int) -> None:
        """Count one answered request's ``usage`` (called by the client, from any thread)."""
        with self._lock:
            self.requests += 1
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.tokens_forwarded += prompt
            self.tokens_computed += prompt

    def _map(self, fn: Callable[[Any], _T], items: Sequence[Any]) -> list[_T]:
        """``fn`` over ``items`` by ``concurrency`` threads (see
        :func:`~promptscout.model.served.client.map_concurrently`)."""
        return map_concurrently(fn, items, self.options.concurrency)

    # -- identity ------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """A hash of what decides the scores: server URL, model id, scoring mode, chat,
        ``top_logprobs`` and ``deep_logprobs`` (and ``max_new_tokens`` for ``generate``)."""
        o = self.options
        identity: list[Any] = ["served", self.base_url, self.model_id, o.scoring, o.chat]
        identity += [o.top_logprobs, o.deep_logprobs]
        if o.scoring == "generate":
            identity.append(o.max_new_tokens)
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]

    # -- scoring -------------------------------------------------------------------------------

    def score_labels(self, texts: Sequence[str], label_words: Sequence[str]) -> np.ndarray:
        """Log-probability of each label word after each text, by the scoring mode (see
        :mod:`promptscout.model.served`); rows in the order of ``texts``.

        Raises:
            PromptscoutError: a request still failed after the client's retries.
        """
        texts, words = list(texts), list(label_words)
        out = np.zeros((len(texts), len(words)), dtype=np.float64)
        if not texts or not words:
            return out
        scoring = self.options.scoring
        if scoring == "echo":
            self._score_echo(texts, words, out)
        elif scoring == "top_logprobs":
            self._score_top(texts, words, out)
        else:
            self._score_generate(texts, words, out)
        return out

    def _score_echo(self, texts: list[str], words: list[str], out: np.ndarray) -> None:
        server = self._server
        groups = [[self._plain(t) + continuation(t, w) for w in words] for t in texts]
        if self._echo_lists:
            answers = self._map(server.echo, groups)
        else:
            flat = self._map(lambda p: server.echo([p])[0], [p for g in groups for p in g])
            answers = [flat[i * len(words) : (i + 1) * len(words)] for i in range(len(texts))]
        for i, (text, choices) in enumerate(zip(texts, answers, strict=True)):
            for c, (prompt, choice) in enumerate(zip(groups[i], choices, strict=True)):
                out[i, c] = echoed_sum(choice, len(text), len(prompt), self.base_url)

    def _score_top(self, texts: list[str], words: list[str], out: np.ndarray) -> None:
        server, n = self._server, self.options.top_logprobs
        if self.chat:
            tops = self._map(lambda t: server.top_chat(self._messages(t), n), texts)
        else:
            tops = self._map(lambda t: server.top(self._plain(t), n), texts)
        rows = [self._match_row(text, top, words) for text, top in zip(texts, tops, strict=True)]
        # No label word listed after a text: every word gets the floor, a tie the objectives
        # count as wrong. Ask for a deeper list there (the words sit just below the top 20 where
        # the model expected other text), once per text; a server that refuses is not asked
        # again.
        unlisted = [i for i, row in enumerate(rows) if row and set(row[1]) == {"floor"}]
        deepened = 0
        if unlisted and self._deep_allowed:
            deep = self._deeper_tops([texts[i] for i in unlisted])
            for i, top in zip(unlisted, deep, strict=True):
                if top:
                    rows[i] = self._match_row(texts[i], top, words)
                    deepened += 1
        counts = dict.fromkeys(MATCH_CASES, 0)
        for i, row in enumerate(rows):
            if row is None:  # the server ends the text here and lists nothing: a tie
                out[i] = MISS_SCORE
                counts["floor"] += len(words)
                continue
            out[i] = row[0]
            for case in row[1]:
                counts[case] += 1
        with self._lock:
            for case, n_case in counts.items():
                self.match_counts[case] += n_case
            self.deepened += deepened
        self.last_matches = [row[1] if row else ["floor"] * len(words) for row in rows]

    def _match_row(
        self, text: str, top: list[tuple[str, float]] | None, words: list[str]
    ) -> tuple[list[float], list[str]] | None:
        """Each word's (score, case) from one text's top list; None where the list is None."""
        if top is None:
            return None
        if not top:
            raise PromptscoutError(
                f'{self.base_url} answered without top log-probabilities; use scoring = "generate"'
            )
        matched = [
            match_word(top, word if self.chat else continuation(text, word), self._tokenizer)
            for word in words
        ]
        return [score for score, _ in matched], [case for _, case in matched]

    def _deeper_tops(self, texts: list[str]) -> list[list[tuple[str, float]] | None]:
        """The ``deep_logprobs`` top lists after ``texts``; Nones where the server refuses so
        many (then it is not asked again)."""
        server, n = self._server, self.options.deep_logprobs

        def ask(text: str) -> list[tuple[str, float]] | None:
            if self.chat:
                return server.top_chat(self._messages(text), n)
            return server.top(self._plain(text), n)

        try:
            return self._map(ask, texts)
        except RefusedError:
            self._deep_allowed = False
            return [None] * len(texts)

    def _score_generate(self, texts: list[str], words: list[str], out: np.ndarray) -> None:
        answers = self._map(lambda t: self._generate_one(t, self.options.max_new_tokens), texts)
        out.fill(MISS_SCORE)
        missed = 0
        for i, answer in enumerate(answers):
            c = answer_class(answer, words)
            if c is None:
                missed += 1
            else:
                out[i, c] = 0.0
        with self._lock:
            self.unparseable += missed
        self.last_answers = list(answers)

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self,
        texts: Sequence[str],
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """Continuation of each text: completions, or chat completions with ``chat``; only the
        new text. Greedy at ``temperature`` 0; sampled above it, text ``i`` with the request
        seed ``seed + i`` (servers that honour ``seed`` then answer alike every time).

        Raises:
            PromptscoutError: a request still failed after the client's retries.
        """
        jobs = [(t, temperature, seed + i) for i, t in enumerate(texts)]
        return self._map(lambda job: self._generate_one(job[0], max_new_tokens, *job[1:]), jobs)

    def _generate_one(
        self, text: str, max_new_tokens: int, temperature: float = 0.0, seed: int = 0
    ) -> str:
        sampling = {"temperature": temperature, "seed": seed} if temperature > 0 else {}
        if self.chat:
            return self._server.reply(self._messages(text), max_new_tokens, **sampling)
        return self._server.complete(self._plain(text), max_new_tokens, **sampling)

    # -- texts and tokens ----------------------------------------------------------------------

    def _messages(self, text: str) -> list[dict[str, str]]:
        """A text's chat messages: a :func:`~promptscout.prompts.chat_text`'s own, or the text
        as one user message."""
        messages = chat_messages(text)
        return messages if messages is not None else [{"role": "user", "content": text}]

    def _plain(self, text: str) -> str:
        if chat_messages(text) is not None:
            raise PromptscoutError(
                f"model '{self.name}' got a chat prompt but [model] chat = false; set chat = true"
            )
        return text

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` from the server's tokenizer endpoint (special tokens cut).

        Raises:
            PromptscoutError: the server has no tokenizer endpoint (see :meth:`count_tokens`).
        """
        if self._tokenizer is None:
            raise PromptscoutError(
                f"{self.base_url} has no tokenizer endpoint, so served model '{self.model_id}' "
                "gives no token ids"
            )
        return list(self._tokenizer.tokens(text))

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``: the server's tokenizer, or ``ceil(characters / 4)`` without one."""
        if self._tokenizer is None:
            return -(-len(text) // CHARS_PER_TOKEN)
        return len(self._tokenizer.tokens(text))

    # -- white-box access: none ----------------------------------------------------------------

    def _no_white_box(self, what: str) -> NoReturn:
        raise PromptscoutError(
            f"served model '{self.name}' gives no {what}: white-box features need an "
            "in-process model (the embedded model, a Hugging Face name or a folder)"
        )

    def input_embeddings(self) -> torch.Tensor:
        self._no_white_box("input embeddings")

    def hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        self._no_white_box("hidden states")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self._no_white_box("hidden states (nearest-neighbour demonstrations)")

    def next_token_log_probs(self, texts: Sequence[str]) -> np.ndarray:
        self._no_white_box("next-token distribution")

    def score_labels_soft(
        self, texts: Sequence[str], label_words: Sequence[str], soft: Any
    ) -> np.ndarray:
        self._no_white_box("soft-prompt scoring")

    def token_text(self, token: int) -> str:
        self._no_white_box("vocabulary")

    def __repr__(self) -> str:
        return (
            f"ServedModel(name={self.name!r}, base_url={self.base_url!r}, "
            f"scoring={self.options.scoring!r}, chat={self.chat!r})"
        )
