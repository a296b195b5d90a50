"""Generation metrics over generated text."""

from __future__ import annotations

from promptscout.objectives.base import ObjectiveInput


def _normalise(text: str) -> str:
    return " ".join(str(text).split()).lower()


def exact_match(data: ObjectiveInput) -> float:
    """Share of generations equal to the target after folding case and white space."""
    pairs = zip(data.outputs, data.examples, strict=True)
    hits = [_normalise(out) == _normalise(ex.label) for out, ex in pairs]
    return sum(hits) / max(len(hits), 1)
