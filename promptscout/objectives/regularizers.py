"""Regularisers: properties of the prompt itself rather than of its predictions."""

from __future__ import annotations

from promptscout.objectives.base import ObjectiveInput


def prompt_length(data: ObjectiveInput) -> float:
    """The prompt's own length in model tokens (instruction, template, demonstrations).

    Minimised; combine it with a small weight to prefer shorter prompts of equal accuracy.
    """
    return float(data.prompt_tokens)
