"""Server answers into label-word scores: the summed echoed log-probabilities of a word
(``echo``), a word's match in one position's top log-probabilities (``top_logprobs``), and the
class a generated answer names (``generate``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from promptscout.errors import PromptscoutError
from promptscout.model.served.options import MISS_SCORE

if TYPE_CHECKING:
    from promptscout.model.served.tokens import Tokenizer


def echoed_sum(choice: Any, start: int, end: int, base_url: str) -> float:
    """The summed log-probabilities of the echoed tokens at ``start <= offset < end`` of an
    echo answer's ``choice`` (``base_url``: the server, for the errors)."""
    logprobs = choice.logprobs
    if logprobs is None or logprobs.text_offset is None or logprobs.token_logprobs is None:
        raise PromptscoutError(f"{base_url} answered an echo request without log-probabilities")
    total, found = 0.0, False
    for offset, value in zip(logprobs.text_offset, logprobs.token_logprobs, strict=False):
        if start <= offset < end:
            if value is None:
                raise PromptscoutError(
                    f"{base_url} echoed no log-probability for a label word's first "
                    'token (an empty text?); use scoring = "top_logprobs"'
                )
            total, found = total + float(value), True
    if not found:
        raise PromptscoutError(
            f'{base_url} echoed no token of a label word; use scoring = "top_logprobs"'
        )
    return total


def match_word(
    top: list[tuple[str, float]], cont: str, tokenizer: Tokenizer | None
) -> tuple[float, str]:
    """(score, case) of the continuation ``cont`` from one position's top log-probabilities.

    With the server's tokenizer, ``cont``'s own tokens decide: one token must be listed
    under its text (exact); of several, the first must be (first_token). Without one, a
    listed token equal to ``cont`` is exact and the longest listed non-blank token that
    begins it is its first token. Otherwise: the floor.
    """
    listed: dict[str, float] = {}
    for token, value in top:
        if token:  # llama.cpp lists partial UTF-8 byte tokens as ""
            listed[token] = max(value, listed.get(token, -math.inf))
    floor = min(listed.values()) - math.log(2) if listed else MISS_SCORE
    ids = tokenizer.word_tokens(cont) if tokenizer is not None else None
    if ids is not None and len(ids) != 1:
        if len(ids) > 1:
            heads = sorted((t for t in listed if cont.startswith(t)), key=len, reverse=True)
            for head in heads:
                if tokenizer.word_tokens(head) == ids[:1]:  # type: ignore[union-attr]
                    return listed[head], "first_token"
        return floor, "floor"
    if cont in listed:
        return listed[cont], "exact"
    if ids is None:
        heads = [t for t in listed if cont.startswith(t) and t.strip()]
        if heads:
            return listed[max(heads, key=len)], "first_token"
    return floor, "floor"


def answer_class(answer: str, label_words: Sequence[str]) -> int | None:
    """The class whose label word comes first in ``answer`` (whole word, any case; the longer
    word where two start at the same place), or None when it names none.

    Example:
        >>> answer_class(" Positive, I think.", ["negative", "positive"])
        1
        >>> answer_class("not sure", ["negative", "positive"])
    """
    best: tuple[int, int, int] | None = None  # (position, -length, class)
    for c, word in enumerate(label_words):
        word = word.strip()
        if not word:
            continue
        found = re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", answer, re.IGNORECASE)
        if found is not None:
            key = (found.start(), -len(word), c)
            best = key if best is None or key < best else best
    return None if best is None else best[2]
