"""The data behind the report's progress and training-curve figures, and the honest value axis
every figure of a metric uses."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from promptscout.objectives import MAXIMIZE, Ranking
from promptscout.plots import Axis
from promptscout.store import Store

# Metrics bounded by [0, 1] whose axis starts at 0 (accuracy may start at chance instead).
UNIT_METRICS = ("accuracy", "macro_f1", "exact_match")


def shown(ranking: Ranking) -> tuple[str, Callable[[Mapping[str, float]], float], bool]:
    """What the plots show: the primary objective's value (unweighted ranking) or the weighted
    ranking score; its label, how to read it from objective values, and whether larger is
    better."""
    if not ranking.weights:
        name, direction = ranking.objectives[0]
        return name, lambda values: values[name], direction == MAXIMIZE
    return "ranking score", ranking.score, True


def value_axis(
    metric: str, label: str, values: list[float], classes: int, maximize: bool = True
) -> Axis:
    """The axis of ``metric`` (``label`` names it and its split): accuracy from chance
    (1/classes) when every value is at or above it, else from 0; other [0, 1] metrics from 0;
    the label says which, and which way is better for an unbounded metric."""
    if metric == "accuracy" and classes > 1 and all(v >= 1 / classes for v in values):
        chance = 1 / classes
        return Axis(f"{label} (axis from chance, 1/{classes} = {chance:.2f})", chance, 1.02)
    if metric in UNIT_METRICS:
        return Axis(f"{label} (axis from 0)", 0.0, 1.02)
    return Axis(f"{label} ({'higher' if maximize else 'lower'} is better)")


def best_so_far(store: Store) -> dict[str, list[tuple[int, float]]]:
    """Per searcher: (examples the campaign had scored, best value so far) at each improvement.

    Only evaluations on the whole search split compete (a racing minibatch's score is on fewer
    examples and not comparable); every evaluation counts towards the examples scored.
    """
    ranking = store.meta.ranking
    _, value, _ = shown(ranking)
    split = store.meta.search_split
    whole = store.meta.search_examples
    spent, curves, best = 0, {}, {}
    for stored in store.evaluations(split):
        evaluation = stored.evaluation
        spent += evaluation.examples
        if not evaluation.ok or evaluation.example_ids != whole:
            continue
        score = ranking.score(evaluation.objectives)
        if math.isfinite(score) and score > best.get(stored.searcher, -math.inf):
            best[stored.searcher] = score
            curves.setdefault(stored.searcher, []).append((spent, value(evaluation.objectives)))
    return curves


def searcher_curves(store: Store) -> dict[str, dict[str, Any]]:
    """The training curves searchers declared (stored with each turn), normalised to
    ``{"points": [(x, y), ...], "x": label, "y": label, "title": title}``, by searcher name
    (``name`` for a searcher's first curve, ``name #2`` ... for more)."""
    found = {}
    for spec in store.meta.config["searchers"]:
        name = (spec.get("options") or {}).get("name") or spec["type"]
        report = store.meta.searcher_report(name) or {}
        curves = report.get("curves") if isinstance(report, dict) else None
        kept = 0
        for curve in curves if isinstance(curves, list) else []:
            data = curve if isinstance(curve, dict) else {"points": curve}
            try:
                points = [(float(x), float(y)) for x, y in data.get("points", [])]
            except (TypeError, ValueError):
                continue  # not a curve in the documented form: leave it out of the report
            if points:
                kept += 1
                found[name if kept == 1 else f"{name} #{kept}"] = {
                    "points": points,
                    "x": str(data.get("x", "step")),
                    "y": str(data.get("y", "reward")),
                    "title": str(data.get("title", f"{name}: training curve")),
                }
    return found
