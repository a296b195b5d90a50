"""``promptscout report``: a self-contained HTML page of a campaign store.

The page shows the leaderboard table and four kinds of figures, each also written as a PNG
beside the HTML (``<name>-progress.png`` ...) and embedded in it as base64, so the HTML alone is
the whole report:

- best score so far against the examples the campaign scored, per searcher;
- the finalists and ensembles on the held-out split, with 95% intervals;
- dev score against prompt length, with the Pareto front;
- searchers' training curves, the ones a searcher declares through its reporting hook
  (:meth:`~promptscout.searchers.Searcher.curves`; e.g. the RL searcher's reward per training
  step), which the campaign stores after every turn as ``{"points": [[x, y], ...], "x": ...,
  "y": ..., "title": ...}`` (a bare list of ``[x, y]`` pairs is read too).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from promptscout.leaderboard import (
    LeaderboardEntry,
    build_leaderboard,
    describe,
    format_value,
)
from promptscout.objectives import MAXIMIZE, Ranking
from promptscout.store import Store

TABLE_ROWS = 50
BARS = 20


def _shown(ranking: Ranking) -> tuple[str, Callable[[Mapping[str, float]], float], bool]:
    """What the plots show: the primary objective's value (unweighted ranking) or the weighted
    ranking score; its label, how to read it from objective values, and whether larger is
    better."""
    if not ranking.weights:
        name, direction = ranking.objectives[0]
        return name, lambda values: values[name], direction == MAXIMIZE
    return "ranking score", ranking.score, True


def best_so_far(store: Store) -> dict[str, list[tuple[int, float]]]:
    """Per searcher: (examples the campaign had scored, best value so far) at each improvement.

    Only evaluations on the whole search split compete (a racing minibatch's score is on fewer
    examples and not comparable); every evaluation counts towards the examples scored.
    """
    ranking = store.meta.ranking
    _, shown, _ = _shown(ranking)
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
            curves.setdefault(stored.searcher, []).append((spent, shown(evaluation.objectives)))
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


def draw_figures(store: Store, folder: Path, stem: str) -> dict[str, Path]:
    """Draw the report's PNGs into ``folder`` as ``<stem>-<figure>.png``; returns them by
    figure name (``progress``, ``leaderboard``, ``pareto``, ``curve-<searcher>``)."""
    from promptscout import plots

    label, shown, maximize = _shown(store.meta.ranking)
    split = store.meta.search_split
    names = store.meta.objective_names
    entries = build_leaderboard(store)
    curves = best_so_far(store)
    # One colour per searcher in every figure.
    searchers = sorted(set(curves) | {e.searcher for e in entries if e.kind == "prompt"})
    colors = {name: f"C{i % 10}" for i, name in enumerate(searchers)}
    figures = {
        "progress": plots.plot_progress(
            curves,
            f"best {split} {label}",
            folder / f"{stem}-progress.png",
            end=store.examples_scored(split),
            colors=colors,
        )
    }
    held_out = [e for e in entries if e.test][:BARS]
    if held_out:
        metric = "accuracy" if "accuracy" in names else names[0]
        bars = [
            plots.Bar(
                _bar_label(e),
                e.test[metric],
                tuple((e.test_interval or {}).get(metric) or ()) or None,
                e.kind == "ensemble",
            )
            for e in held_out
            if metric in e.test
        ]
        figures["leaderboard"] = plots.plot_leaderboard(
            bars, f"held-out {metric}", folder / f"{stem}-leaderboard.png"
        )
    points = [
        plots.Point(e.prompt_tokens, shown(e.dev), e.searcher)
        for e in entries
        if e.kind == "prompt" and e.dev and e.prompt_tokens is not None and _has(shown, e.dev)
    ]
    if points:
        figures["pareto"] = plots.plot_pareto(
            points, f"{split} {label}", folder / f"{stem}-pareto.png", maximize, colors
        )
    for i, (searcher, curve) in enumerate(searcher_curves(store).items()):
        figures[f"curve-{searcher}"] = plots.plot_curve(
            curve["points"],
            curve["x"],
            curve["y"],
            curve["title"],
            folder / f"{stem}-curve-{i}.png",
        )
    return figures


def _has(shown: Callable[[Mapping[str, float]], float], values: Mapping[str, float]) -> bool:
    try:
        return math.isfinite(shown(values))
    except KeyError:
        return False


def _bar_label(entry: LeaderboardEntry) -> str:
    if entry.kind == "ensemble":
        return f"#{entry.rank} {describe(entry.prompt, width=48)}"
    return f"#{entry.rank} {entry.searcher}: {describe(entry.prompt, width=40)}"


def _table(entries: list[LeaderboardEntry], names: list[str]) -> str:
    head = ["rank", "kind", "searcher"] + [f"dev {n}" for n in names]
    head += [f"test {n} [95% CI]" for n in names] + ["tokens", "examples", "prompt"]
    rows = []
    for e in entries:
        cells = [str(e.rank), e.kind, html.escape(e.searcher)]
        cells += [format_value(e.dev, n) for n in names]
        cells += [format_value(e.test, n, e.test_interval) for n in names]
        cells += ["&ndash;" if e.prompt_tokens is None else str(e.prompt_tokens), str(e.examples)]
        cells.append(f"<code>{html.escape(describe(e.prompt, width=400))}</code>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def write_report(store: Store, path: Path) -> Path:
    """Write the report HTML to ``path`` (its PNGs beside it) and return ``path``."""
    config = store.meta.config
    names = store.meta.objective_names
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = draw_figures(store, path.parent, path.stem)
    titles = {
        "progress": "Best score so far",
        "leaderboard": "Held-out scores",
        "pareto": "Score vs prompt length",
    }
    sections = []
    for name, png in figures.items():
        title = titles.get(name, f"Training curve: {name.removeprefix('curve-')}")
        sections.append(f"<h2>{html.escape(title)}</h2>{_image(png, title)}")
    entries = build_leaderboard(store, top=TABLE_ROWS)
    shown = {e.prompt.key for e in entries}
    entries += [
        e for e in build_leaderboard(store) if e.kind == "ensemble" and e.prompt.key not in shown
    ]
    stop = store.meta.stop_reason
    task = config["task"]["path"] or config["task"]["name"]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>promptscout: {html.escape(config["name"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
code{{white-space:pre-wrap}}img{{max-width:100%}}</style>
</head><body>
<h1>Campaign {html.escape(config["name"])}</h1>
<p>Task {html.escape(task)} (searched on {html.escape(config["task"]["search_split"])}, held out:
{html.escape(config["task"]["holdout_split"])}), model {html.escape(config["model"]["name"])};
{store.examples_scored(config["task"]["search_split"])} examples scored in
{store.count_evaluations()} evaluations{f"; stopped: {html.escape(stop)}" if stop else ""}.
Test intervals are 95% (Wilson for accuracy, bootstrap otherwise); examples is what a row cost
(an ensemble's members' scoring); a weighted ensemble's dev values are cross-validated.</p>
<h2>Leaderboard</h2>
{_table(entries, names)}
{"".join(sections)}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
