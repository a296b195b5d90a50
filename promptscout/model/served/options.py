"""How to reach and use an OpenAI-compatible server: :class:`ServedOptions` (the campaign file's
``[model]``, validated) and the constants of the served backend."""

from __future__ import annotations

from dataclasses import dataclass

from promptscout.errors import PromptscoutError

SERVED_PREFIX = "openai:"
"""Model names starting with this are served models: ``openai:MODEL_ID``."""

SCORING_MODES = ("echo", "top_logprobs", "generate")
"""How a :class:`~promptscout.model.served.ServedModel` scores label words (see
:mod:`promptscout.model.served`)."""

MATCH_CASES = ("exact", "first_token", "floor")
"""The cases of ``top_logprobs`` scoring, the keys of
:attr:`~promptscout.model.served.ServedModel.match_counts`."""

MISS_SCORE = -30.0
"""``generate`` scoring: the score of a class the answer does not name; ``top_logprobs``: of
every word after a text where the server writes nothing and lists nothing."""

DEFAULT_CONTEXT = 4096
"""The context size assumed when the server does not report one."""

CHARS_PER_TOKEN = 4
"""Without a tokenizer endpoint, a text counts as ``ceil(characters / 4)`` tokens."""

ECHO_TOLERANCE = 0.5
"""Nats by which an echoed log-probability may differ from the next-token one (the probe)."""


@dataclass(frozen=True)
class ServedOptions:
    """How to reach and use an OpenAI-compatible server (the campaign file's ``[model]``).

    Attributes:
        base_url: the server's OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: the NAME of the environment variable holding the API key; empty: send no
            key (local servers). The key itself is never logged or stored.
        scoring: ``"echo"``, ``"top_logprobs"`` or ``"generate"`` (see
            :mod:`promptscout.model.served`).
        chat: send prompts to ``/v1/chat/completions`` as chat messages (not with ``echo``).
        concurrency: requests in flight at once.
        timeout: seconds to wait for one answer before retrying.
        max_retries: retries of a request that timed out or got 408/409/429/5xx, with
            exponential backoff and jitter (the ``openai`` client's).
        requests_per_minute: at most this many requests start per minute, evenly spaced; 0: no
            limit (the client's retries come on top; it honours a server's Retry-After).
        top_logprobs: how many next-token log-probabilities to ask for (``top_logprobs``).
        deep_logprobs: after a text where none of the label words is listed, ask again for this
            many (local servers allow more than hosted APIs' 20); 0, or a server that refuses:
            every word keeps the floor, a tie.
        max_new_tokens: the answer length of ``generate`` scoring.
    """

    base_url: str
    api_key_env: str = ""
    scoring: str = "top_logprobs"
    chat: bool = False
    concurrency: int = 8
    timeout: float = 60
    max_retries: int = 5
    requests_per_minute: float = 0
    top_logprobs: int = 20
    deep_logprobs: int = 100
    max_new_tokens: int = 8

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise PromptscoutError(
                f"[model] base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, "
                f"got {self.base_url!r}"
            )
        if self.scoring not in SCORING_MODES:
            raise PromptscoutError(
                f"unknown [model] scoring {self.scoring!r}; use one of {', '.join(SCORING_MODES)}"
            )
        if self.chat and self.scoring == "echo":
            raise PromptscoutError(
                "chat endpoints have no echo: with [model] chat = true use scoring = "
                '"top_logprobs" or "generate"'
            )
        limits = {
            "concurrency": (self.concurrency, 1),
            "max_retries": (self.max_retries, 0),
            "top_logprobs": (self.top_logprobs, 1),
            "max_new_tokens": (self.max_new_tokens, 1),
            "deep_logprobs": (self.deep_logprobs, 0),
        }
        for field, (value, low) in limits.items():
            if value < low:
                raise PromptscoutError(f"[model] {field} must be at least {low}, got {value}")
        if not self.timeout > 0:
            raise PromptscoutError(f"[model] timeout must be positive, got {self.timeout}")
        if not self.requests_per_minute >= 0:
            raise PromptscoutError(
                f"[model] requests_per_minute must be 0 (no limit) or positive, "
                f"got {self.requests_per_minute}"
            )
