"""The ``[model]`` and ``[proposer]`` tables: which language model scores the prompts (in
process or served), and which one writes prompt text."""

from __future__ import annotations

from dataclasses import dataclass

from promptscout.model import DTYPES, EMBEDDED_MODEL_NAME
from promptscout.model.served import SCORING_MODES, SERVED_PREFIX
from promptscout.options import OptionError, option

SERVER_OPTIONS = ("base_url", "scoring", "chat", "api_key_env")
"""The ``[model]`` options an export keeps so that ``evaluate --prompt`` reaches and reads a
served model again (never the key itself: only the variable's name)."""


@dataclass
class ModelConfig:
    """The ``[model]`` table: the language model every prompt is scored with."""

    name: str = option(
        EMBEDDED_MODEL_NAME,
        help="The embedded default, a Hugging Face hub name, or a local folder.",
    )
    dtype: str = option("float32", help=f"Weight dtype: {' | '.join(DTYPES)}.")
    device: str = option("cpu", help="Where the model runs: cpu | cuda | auto.")
    batch_size: int = option(16, help="Texts per model call.")
    chat: bool = option(
        False,
        help="Render prompts as chat messages (the instruction as the system message, "
        "demonstrations as earlier turns); in-process models use their chat template.",
    )
    base_url: str = option(
        "",
        help='A served model (name = "openai:MODEL_ID"): its OpenAI-compatible API, e.g. '
        "http://127.0.0.1:8000/v1.",
    )
    api_key_env: str = option(
        "", help="Served: the NAME of the environment variable holding the API key (not the key)."
    )
    scoring: str = option(
        "top_logprobs",
        help='Served: how label words are scored: "echo" | "top_logprobs" | "generate".',
    )
    top_logprobs: int = option(
        20,
        help="Served, top_logprobs scoring: next-token alternatives asked for (hosted: 20 at "
        "most).",
    )
    deep_logprobs: int = option(
        100,
        help="Served, top_logprobs scoring: after a text where no label word is listed, ask "
        "again for this many (0: never; a server that refuses is not asked again).",
    )
    concurrency: int = option(8, help="Served: requests in flight.")
    timeout: float = option(60.0, help="Served: seconds per request.")
    max_retries: int = option(
        5, help="Served: retries with exponential backoff on 429, 5xx and timeouts."
    )
    requests_per_minute: float = option(
        0.0, help="Served: at most this many requests a minute (0: no limit)."
    )
    price_per_1k_input: float = option(
        0.0, help="Dollars per 1,000 prompt tokens (cost accounting; 0: not priced)."
    )
    price_per_1k_output: float = option(0.0, help="Dollars per 1,000 completion tokens.")

    @property
    def served(self) -> bool:
        return self.name.startswith(SERVED_PREFIX)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise OptionError(
                "dtype", f"must be {', '.join(DTYPES[:-1])} or {DTYPES[-1]}, got {self.dtype!r}"
            )
        if self.batch_size < 1:
            raise OptionError("batch_size", "must be at least 1")
        if self.served and not self.base_url:
            raise OptionError("base_url", f"a served model ({self.name}) needs its server's URL")
        if self.base_url and not self.served:
            raise OptionError(
                "name", f'base_url is for served models: write name = "openai:{self.name}"'
            )
        if self.scoring not in SCORING_MODES:
            raise OptionError(
                "scoring", f"must be one of {', '.join(SCORING_MODES)}, got {self.scoring!r}"
            )
        for key, low in (("concurrency", 1), ("max_retries", 0), ("top_logprobs", 1)):
            if getattr(self, key) < low:
                raise OptionError(key, f"must be at least {low}")
        if self.deep_logprobs and self.deep_logprobs <= self.top_logprobs:
            raise OptionError(
                "deep_logprobs", f"must be 0 or more than top_logprobs ({self.top_logprobs})"
            )
        for key in ("timeout", "requests_per_minute", "price_per_1k_input", "price_per_1k_output"):
            if getattr(self, key) < 0 or (key == "timeout" and self.timeout == 0):
                raise OptionError(key, f"must be {'positive' if key == 'timeout' else '0 or more'}")


@dataclass
class ProposerConfig(ModelConfig):
    """The ``[proposer]`` table: the model that writes prompt text for searchers that write with
    a language model (the evolutionary searcher's LM operators), with ``[model]``'s options;
    empty ``name``: the campaign's model."""

    name: str = option(
        "", help="The writing model (as [model] name); empty: the campaign's own model."
    )
