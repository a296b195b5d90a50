"""The report's figures, drawn from a store into PNG files (:mod:`promptscout.plots` draws).

Every figure of a metric names the metric and its split on its value axis, and an accuracy axis
starts at chance (1/classes) or at 0, saying which (:func:`~.curves.value_axis`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

from promptscout.leaderboard import LeaderboardEntry, build_leaderboard, describe
from promptscout.objectives import MAXIMIZE
from promptscout.report.curves import best_so_far, searcher_curves, shown, value_axis
from promptscout.report.explain import Explanation
from promptscout.store import Store

BARS = 20


def _has(value: Callable[[Mapping[str, float]], float], values: Mapping[str, float]) -> bool:
    try:
        return math.isfinite(value(values))
    except KeyError:
        return False


def _bar_label(entry: LeaderboardEntry) -> str:
    if entry.kind == "ensemble":
        return f"#{entry.rank} {describe(entry.prompt, width=48)}"
    return f"#{entry.rank} {entry.searcher}: {describe(entry.prompt, width=40)}"


def draw_figures(
    store: Store, folder: Path, stem: str, explanation: Explanation | None = None
) -> dict[str, Path]:
    """Draw the report's PNGs into ``folder`` as ``<stem>-<figure>.png``; returns them by
    figure name (``confusion`` when ``explanation`` has the pick's confusion matrix,
    ``progress``, ``leaderboard``, ``pareto``, ``curve-<searcher>``)."""
    from promptscout import plots

    meta = store.meta
    metric, value, maximize = shown(meta.ranking)
    split, held = meta.search_split, meta.holdout_split
    names = meta.objective_names
    classes = len(meta.label_words)
    entries = build_leaderboard(store)
    figures = {}
    found = explanation.confusion if explanation else None
    if found is not None:
        accuracy = found.correct / max(found.examples, 1)
        figures["confusion"] = plots.plot_confusion(
            found.matrix,
            list(found.classes),
            f"The pick on the held-out {held} split: accuracy {accuracy:.3f} "
            f"({found.correct} of {found.examples})",
            f"gold class ({held} split, held out)",
            folder / f"{stem}-confusion.png",
        )
    curves = best_so_far(store)
    # One colour per searcher in every figure.
    searchers = sorted(set(curves) | {e.searcher for e in entries if e.kind == "prompt"})
    colors = {name: f"C{i % 10}" for i, name in enumerate(searchers)}
    reached = [y for curve in curves.values() for _, y in curve]
    figures["progress"] = plots.plot_progress(
        curves,
        value_axis(metric, f"best {split} {metric}", reached, classes, maximize),
        folder / f"{stem}-progress.png",
        end=store.examples_scored(split),
        colors=colors,
    )
    held_out = [e for e in entries if e.test][:BARS]
    if held_out:
        shown_metric = "accuracy" if "accuracy" in names else names[0]
        bars = [
            plots.Bar(
                _bar_label(e),
                e.test[shown_metric],
                tuple((e.test_interval or {}).get(shown_metric) or ()) or None,
                e.kind == "ensemble",
            )
            for e in held_out
            if shown_metric in e.test
        ]
        low = [b.interval[0] if b.interval else b.value for b in bars]
        direction = dict(meta.ranking.objectives).get(shown_metric, MAXIMIZE)
        axis = value_axis(
            shown_metric,
            f"held-out {held} {shown_metric}",
            low,
            classes,
            direction == MAXIMIZE,
        )
        figures["leaderboard"] = plots.plot_leaderboard(
            bars, axis, folder / f"{stem}-leaderboard.png"
        )
    points = [
        plots.Point(e.prompt_tokens, value(e.dev), e.searcher)
        for e in entries
        if e.kind == "prompt" and e.dev and e.prompt_tokens is not None and _has(value, e.dev)
    ]
    if points:
        axis = value_axis(metric, f"{split} {metric}", [p.value for p in points], classes, maximize)
        figures["pareto"] = plots.plot_pareto(
            points, axis, folder / f"{stem}-pareto.png", maximize, colors
        )
    for i, (searcher, curve) in enumerate(searcher_curves(store).items()):
        figures[f"curve-{searcher}"] = plots.plot_curve(
            curve["points"],
            curve["x"],
            f"{curve['y']} (as {searcher} measures it)",
            curve["title"],
            folder / f"{stem}-curve-{i}.png",
        )
    return figures
