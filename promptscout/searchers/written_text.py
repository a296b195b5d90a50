"""Reading an instruction out of a language model's answer: shared by the evolutionary
searcher's LM operators and the writer searchers (APE, OPRO, reflect).

A small instruct model often answers with something else than the instruction asked for (a
label, an empty line, a repeat of its input, a sentence cut off by the token limit), so an answer
is first reduced to its candidate line (:func:`extract`), then checked (:func:`flaw`), which
names what is wrong so that callers can count drops per reason.

Example:
    >>> extract('Rewritten: "Decide if the review is positive."\\nMore text')
    'Decide if the review is positive.'
    >>> flaw("positive", inputs=[])
    'unusable'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# What an answer may start with that is not part of it: a field name the prompt suggests, a
# list marker, quotes.
_LEAD = re.compile(
    r"^(?:(?:here is |here's )?(?:the )?(?:rewritten|new instruction|instruction(?: \d)?|answer|"
    r"output|sentence|prompt|improved instruction)(?: is)?\s*:\s*|[-*\u2022]\s+|\d+[.)]\s+)",
    re.IGNORECASE,
)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
_MARKUP = ("[T]", "[P]", "<", ">", "http")
_ENDS = (".", "!", "?")

EMPTY = "empty"
UNUSABLE = "unusable"  # too short, markup or template syntax, not printable text
REPEATS_INPUT = "repeats its input"


def first_line(answer: str) -> str:
    """The first non-empty line of an answer, stripped ("" when there is none)."""
    return next((line.strip() for line in answer.splitlines() if line.strip()), "")


def extract(answer: str, sentence: bool = True) -> str:
    """The candidate line of an answer ("" when there is none).

    Takes the first non-empty line, strips a leading field name, list marker and quotes, and
    (for a ``sentence``, not a template, which ends with its answer cue) cuts a sentence that
    the token limit cut off back to its last full sentence (a last line without sentence
    punctuation or a closing quote counts as cut off).
    """
    lines = answer.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return ""
    text = lines[first].strip()
    cut_off = first == len(lines) - 1 and not text.endswith(tuple(_QUOTES))
    for _ in range(3):
        text = _LEAD.sub("", text).strip().strip(_QUOTES).strip()
    if sentence and cut_off and not text.endswith(_ENDS):
        ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
        text = text[: ends[-1]] if ends else ""
    return text


def flaw(text: str, inputs: Sequence[str], max_words: int = 40, braces: bool = False) -> str | None:
    """What makes an extracted instruction unusable, or None.

    Args:
        text: An :func:`extract` result.
        inputs: Texts the model was shown that the answer must not merely repeat.
        max_words: Most words (fewer than 3 is always too short).
        braces: Whether ``{field}`` placeholders are allowed (a written template needs them).

    Returns:
        :data:`EMPTY`, :data:`UNUSABLE`, :data:`REPEATS_INPUT` or None.
    """
    if not text.strip():
        return EMPTY
    words = text.split()
    if not 3 <= len(words) <= max_words or not text.isprintable() or text.endswith(":"):
        return UNUSABLE
    if any(bad in text for bad in _MARKUP) or (not braces and ("{" in text or "}" in text)):
        return UNUSABLE
    if _plain(text) in {_plain(i) for i in inputs}:
        return REPEATS_INPUT
    return None


def finish(text: str) -> str:
    """``text`` ending with sentence punctuation."""
    return text if text.endswith(_ENDS) else text + "."


def clean(answer: str, inputs: Sequence[str], max_words: int = 40) -> str | None:
    """The usable instruction in a model's answer (ending with sentence punctuation), or None
    when :func:`flaw` finds one."""
    text = extract(answer)
    return None if flaw(text, inputs, max_words) else finish(text)


def _plain(text: str) -> str:
    return text.casefold().rstrip(".!?").strip()
