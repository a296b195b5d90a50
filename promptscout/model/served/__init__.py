"""A model behind an OpenAI-compatible server (vLLM, llama.cpp, Ollama, hosted APIs).

:class:`ServedModel` is the :class:`~promptscout.model.base.LanguageModel` that
:func:`~promptscout.model.load_model` returns for ``"openai:MODEL_ID"`` (the id the server lists
under ``/v1/models``) with :class:`ServedOptions`. It is black-box: it scores label words and
generates text through the official ``openai`` client (which retries 408/409/429/5xx answers and
timeouts with exponential backoff and jitter), and has no hidden states, gradients or embeddings.

Label words are scored in one of three ways (``ServedOptions.scoring``):

- ``"echo"``: ``/v1/completions`` on ``text + word`` with ``echo``, summing the echoed
  log-probabilities of the word's tokens: exact, multi-token words included; needs a server whose
  echoed log-probabilities are right (the start-up probe checks them).
- ``"top_logprobs"``: the next-token ``top_logprobs`` after the text (completions, or chat
  completions with ``chat``). A word that is one token in the list gets its log-probability
  (exact); a word of several tokens gets its first token's (approximate, an upper bound); a word
  not in the list gets a floor, the smallest listed log-probability minus log 2. ``match_counts``
  counts the three cases. (Where the most likely next token ends the text, a server may write
  nothing and list nothing: the request is sent again with ``min_tokens: 1``; where that is
  refused too, every word scores -30.0, a tie.)
- ``"generate"``: a short greedy answer per text; the first label word it contains (whole word,
  any case) scores 0.0 and the others -30.0; an answer with none scores -30.0 everywhere (a tie,
  which the objectives count as wrong).

At construction the model checks the server once: it is reachable, lists the model id, accepts
the key, and does the scoring mode right; any failure is one line naming the fix.

The package, bottom up: :mod:`~.options` (:class:`ServedOptions` and the constants),
:mod:`~.errors` (a failed request as one line), :mod:`~.client` (the requests: rate limit,
retries, usage, threads), :mod:`~.tokens` (the server's tokenizer endpoint), :mod:`~.probe` (the
start-up checks), :mod:`~.scoring` (answers into scores) and :mod:`~.model` (:class:`ServedModel`).
"""

from __future__ import annotations

from promptscout.model.served.client import _RateLimiter as _RateLimiter  # for the tests
from promptscout.model.served.model import ServedModel
from promptscout.model.served.options import (
    MATCH_CASES,
    MISS_SCORE,
    SCORING_MODES,
    SERVED_PREFIX,
    ServedOptions,
)
from promptscout.model.served.scoring import answer_class

__all__ = [
    "MATCH_CASES",
    "MISS_SCORE",
    "SCORING_MODES",
    "SERVED_PREFIX",
    "ServedModel",
    "ServedOptions",
    "answer_class",
]
