"""``promptscout report``: a self-contained HTML page of a campaign store."""

from __future__ import annotations

import html
import math
from pathlib import Path

from promptscout.leaderboard import build_leaderboard, describe
from promptscout.objectives import Ranking
from promptscout.store import Store


def best_so_far(store: Store) -> dict[str, list[tuple[int, float]]]:
    """Per searcher: (examples scored so far in the campaign, best ranking score so far) at each
    improvement, from search-split evaluations in commit order."""
    ranking = Ranking.from_dict(store.get_meta("ranking"))
    split = store.get_meta("config")["task"]["search_split"]
    spent, curves, best = 0, {}, {}
    for stored in store.evaluations(split):
        spent += stored.evaluation.examples
        score = ranking.score(stored.evaluation.objectives) if stored.evaluation.ok else -math.inf
        if score > best.get(stored.searcher, -math.inf):
            best[stored.searcher] = score
            curves.setdefault(stored.searcher, []).append((spent, score))
    return curves


def _cell(values: dict[str, float] | None, name: str) -> str:
    return "&ndash;" if not values or name not in values else f"{values[name]:.4f}"


def write_report(store: Store, path: Path) -> Path:
    """Write the report HTML to ``path`` and return it."""
    config = store.get_meta("config")
    names = config["objective"]["names"]
    entries = build_leaderboard(store, top=50)
    rows = []
    for e in entries:
        cells = [str(e.rank), html.escape(e.searcher)]
        cells += [_cell(e.dev, n) for n in names] + [_cell(e.test, n) for n in names]
        cells.append(f"<code>{html.escape(describe(e.prompt, width=200))}</code>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["rank", "searcher"] + [f"dev {n}" for n in names] + [f"test {n}" for n in names]
    head.append("prompt")
    progress = []
    for searcher, curve in best_so_far(store).items():
        steps = ", ".join(f"{spent}: {score:.4f}" for spent, score in curve)
        progress.append(f"<li><b>{html.escape(searcher)}</b>: {html.escape(steps)}</li>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>promptscout: {html.escape(config["name"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}code{{white-space:pre-wrap}}</style>
</head><body>
<h1>Campaign {html.escape(config["name"])}</h1>
<p>Task {html.escape(config["task"]["path"] or config["task"]["name"])}, model
{html.escape(config["model"]["name"])}, {store.count_evaluations()} evaluations stored.</p>
<h2>Leaderboard</h2>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>{"".join(rows)}</table>
<h2>Best score so far (examples scored: score)</h2><ul>{"".join(progress)}</ul>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
