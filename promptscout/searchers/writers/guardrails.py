"""What a written proposal must pass before it is scored, with drops counted per reason.

A proposal is dropped when it is empty, unusable (too short, markup or template syntax where
none belongs), merely repeats an input it was shown, repeats an earlier proposal, lacks an input
field (a written template), copies the meta-prompt's own wording, or is longer than
``max_prompt_tokens``. The counts are part of the writer's saved state and of its report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from promptscout.prompts import template_fields
from promptscout.searchers.written_text import (
    EMPTY,
    REPEATS_INPUT,
    UNUSABLE,
    extract,
    finish,
    first_line,
    flaw,
)

REPEATS_EARLIER = "repeats an earlier proposal"
NO_INPUT_FIELD = "lacks an input field"
COPIES_META = "copies the meta-prompt"
TOO_LONG = "too long"
REASONS = (EMPTY, UNUSABLE, REPEATS_INPUT, REPEATS_EARLIER, NO_INPUT_FIELD, COPIES_META, TOO_LONG)

COPY_SHARE = 0.5  # a proposal with this share of its word 4-grams in the meta-prompt copies it
_WORD = re.compile(r"[a-z0-9']+")


class Guardrails:
    """Admits proposals, counting what it drops (:attr:`dropped`) and keeps (:attr:`kept`).

    Args:
        input_fields: The task's input fields (a written template must hold one).
        count_tokens: Tokens of a text (for ``max_prompt_tokens``).
        max_prompt_tokens: Longest admitted prompt, instruction and template together.
    """

    def __init__(
        self,
        input_fields: Sequence[str],
        count_tokens: Callable[[str], int],
        max_prompt_tokens: int,
    ) -> None:
        self.input_fields = tuple(input_fields)
        self.count_tokens = count_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.seen: set[str] = set()
        self.dropped: Counter[str] = Counter()
        self.kept = 0

    def admit(
        self,
        answer: str,
        *,
        wording: str,
        inputs: Sequence[str],
        frame: Callable[[str], str],
        template: bool = False,
    ) -> str | None:
        """The proposal in ``answer``, or None (dropped, and counted under its reason).

        Args:
            answer: What the proposer wrote.
            wording: The meta-prompt's own text (placeholders blanked).
            inputs: Texts the proposer was shown that a proposal must not merely repeat.
            frame: The prompt's own text with this proposal in it (for its length).
            template: The proposal is a template (it must hold an input field, braces allowed).
        """
        text = extract(answer, sentence=not template)
        reason = _unread(answer, text, inputs) or flaw(text, inputs, braces=template)
        if reason is None:
            text = finish(text) if not template else text
            reason = self._reason(text, wording, frame, template)
        if reason is not None:
            self.dropped[reason] += 1
            return None
        self.seen.add(_normal(text))
        self.kept += 1
        return text

    def remember(self, text: str) -> None:
        """Count ``text`` (a starting instruction) as proposed, so it is not proposed again."""
        self.seen.add(_normal(text))

    def _reason(
        self, text: str, wording: str, frame: Callable[[str], str], template: bool
    ) -> str | None:
        if _normal(text) in self.seen:
            return REPEATS_EARLIER
        if template and not set(template_fields(text)) & set(self.input_fields):
            return NO_INPUT_FIELD
        if template and set(template_fields(text)) - set(self.input_fields):
            return UNUSABLE
        if copies(text, wording):
            return COPIES_META
        if self.count_tokens(frame(text)) > self.max_prompt_tokens:
            return TOO_LONG
        return None

    def state(self) -> dict[str, Any]:
        return {"seen": sorted(self.seen), "dropped": dict(self.dropped), "kept": self.kept}

    def load_state(self, state: dict[str, Any]) -> None:
        self.seen = set(state.get("seen", []))
        self.dropped = Counter(state.get("dropped", {}))
        self.kept = int(state.get("kept", 0))


def copies(text: str, wording: str) -> bool:
    """Whether at least :data:`COPY_SHARE` of ``text``'s word 4-grams (the whole text when it
    has fewer than 4 words) appear in ``wording``.

    Example:
        >>> meta = "Write the instruction they were given, in one sentence."
        >>> copies("Write the instruction they were given.", meta)
        True
        >>> copies("Decide whether the review is positive.", meta)
        False
    """
    words, source = _WORD.findall(text.casefold()), _WORD.findall(wording.casefold())
    n = min(4, len(words))
    if n == 0:
        return False
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    known = {tuple(source[i : i + n]) for i in range(len(source) - n + 1)}
    return sum(g in known for g in grams) >= COPY_SHARE * len(grams)


def _unread(answer: str, text: str, inputs: Sequence[str]) -> str | None:
    """Why nothing could be read out of a non-empty answer (it repeats an input, or is cut off
    with no full sentence), or None."""
    line = first_line(answer)
    if not line:
        return EMPTY
    if _normal(line) in {_normal(i) for i in inputs}:
        return REPEATS_INPUT
    return None if text else UNUSABLE


def _normal(text: str) -> str:
    return " ".join(text.casefold().rstrip(".!?").split())
