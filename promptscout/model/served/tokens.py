"""A server's tokenizer endpoint, where it has one: :func:`find_tokenizer` looks for llama.cpp's
``/extras/tokenize`` and vLLM's ``/tokenize``; a :class:`Tokenizer` gives the token ids of a
text (the special tokens cut) and of a label word as it follows a text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptscout.model.served.client import ServerClient

_CACHE_SIZE = 100_000
"""Texts whose tokens a :class:`Tokenizer` keeps (beyond that, it asks the server again)."""


class Tokenizer:
    """A server's tokenizer endpoint (found by :func:`find_tokenizer`).

    Attributes:
        endpoint: its URL.
        max_length: the context size its answer reports (vLLM's ``max_model_len``), or None.
    """

    def __init__(
        self,
        server: ServerClient,
        endpoint: str,
        body: dict[str, Any],
        field: str,
        special_prefix: list[int],
        max_length: int | None,
    ) -> None:
        """``body``: the fields every request sends; ``field``: the body's text field;
        ``special_prefix``: the tokens an empty text gets (a BOS), cut from every answer."""
        self.endpoint = endpoint
        self.max_length = max_length
        self._server = server
        self._body = body
        self._field = field
        self._special_prefix = special_prefix
        self._cache: dict[str, list[int]] = {}

    def tokens(self, text: str) -> list[int]:
        """Token ids of ``text``, without the special tokens an empty text gets (cached)."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        server = self._server
        try:
            answer = server.client.post(
                self.endpoint, cast_to=object, body={**self._body, self._field: text}
            )
        except server.openai.OpenAIError as e:
            server.fail(e, "a tokenizer request")
        ids = [int(t) for t in (answer.get("tokens") if isinstance(answer, dict) else None) or []]
        prefix = self._special_prefix
        if prefix and ids[: len(prefix)] == prefix:
            ids = ids[len(prefix) :]
        if len(self._cache) < _CACHE_SIZE:
            self._cache[text] = ids
        return ids

    def word_tokens(self, cont: str) -> list[int]:
        """The tokens of a continuation as they follow a text (a fixed cue before it, so that
        a tokenizer adding a space at the start of a text does not split it differently)."""
        cue = "Answer:" if cont[:1].isspace() else "Answer:\n"
        before, both = self.tokens(cue), self.tokens(cue + cont)
        if both[: len(before)] == before:
            return both[len(before) :]
        return self.tokens(cont)


def find_tokenizer(server: ServerClient) -> Tokenizer | None:
    """The server's tokenizer endpoint, if it has one (tried once, no retries)."""
    candidates = [  # (URL, body, the body's text field)
        (f"{server.root}/extras/tokenize", {"model": server.model_id}, "input"),  # llama.cpp
        (
            f"{server.root}/tokenize",  # vLLM
            {"model": server.model_id, "add_special_tokens": False},
            "prompt",
        ),
    ]
    for url, body, field in candidates:
        try:
            answer = server.client.post(
                url, cast_to=object, body={**body, field: ""}, options={"max_retries": 0}
            )
        except server.openai.OpenAIError:
            continue
        if isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
            # Whatever an empty text gets (a BOS) is special: cut from every answer.
            special_prefix = [int(t) for t in answer["tokens"]]
            limit = answer.get("max_model_len")
            max_length = limit if isinstance(limit, int) and limit > 0 else None
            return Tokenizer(server, url, body, field, special_prefix, max_length)
    return None
