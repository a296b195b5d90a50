"""Evaluators score prompts against the model: in-process now, Ray actors later."""

from __future__ import annotations

from promptscout.evaluation.base import Evaluation, Evaluator
from promptscout.evaluation.local import LocalEvaluator

__all__ = ["Evaluation", "Evaluator", "LocalEvaluator"]
