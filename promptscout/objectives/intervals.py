"""Confidence intervals of objective values on a fixed set of examples.

Accuracy gets the Wilson score interval (closed form, well behaved near 0 and 1 and for small
samples). Every other objective gets a percentile bootstrap over examples: the objective is
recomputed on resampled example sets. The resamples come from a fixed seed and depend only on
the number of examples, so every prompt of a leaderboard is resampled on the same example sets
(paired) and intervals are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptscout.objectives.base import Objective, ObjectiveInput

Z_95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 1000


def wilson_interval(accuracy: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``accuracy`` observed on ``n`` examples."""
    if n <= 0:
        return (0.0, 1.0)
    z2 = z * z
    center = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))


def bootstrap_interval(
    objective: Objective,
    data: ObjectiveInput,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of ``objective`` on ``data``'s examples, or None when the
    objective fails on a resample (e.g. a plug-in that needs every class present)."""
    n = len(data.examples)
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    outputs = data.outputs
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        sample = outputs[idx] if isinstance(outputs, np.ndarray) else [outputs[i] for i in idx]
        resampled = ObjectiveInput(
            data.task, [data.examples[i] for i in idx], sample, data.prompt, data.prompt_tokens
        )
        try:
            values.append(objective(resampled))
        except Exception:  # a plug-in's failure on a resample just means no interval
            return None
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return (float(low), float(high))


def confidence_intervals(
    objectives: Sequence[Objective], data: ObjectiveInput, values: dict[str, Any]
) -> dict[str, list[float]]:
    """95% intervals of each objective in ``values`` (Wilson for accuracy, bootstrap for the
    rest), as ``{name: [low, high]}``; objectives without an interval are left out."""
    found: dict[str, list[float]] = {}
    for objective in objectives:
        if objective.name not in values:
            continue
        if objective.name == "accuracy":
            interval: tuple[float, float] | None = wilson_interval(
                values["accuracy"], len(data.examples)
            )
        else:
            interval = bootstrap_interval(objective, data)
        if interval is not None:
            found[objective.name] = [interval[0], interval[1]]
    return found
