"""The report's HTML: one self-contained page (figures embedded as base64 PNGs), written
atomically so that a browser reloading it never reads half of it."""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from promptscout.leaderboard import LeaderboardEntry, build_leaderboard, describe, format_value
from promptscout.objectives.base import UNDECIDED
from promptscout.report.explain import Explanation, explain
from promptscout.report.figures import draw_figures
from promptscout.report.lineage import Node, family_tree, winner, writing_notes
from promptscout.report.provenance import Census, census, evidence, origin, readout
from promptscout.sections import TaskConfig
from promptscout.store import Store

TABLE_ROWS = 50  # leaderboard rows, disagreements shown
FINALISTS = 20  # provenance rows
TITLES = {
    "progress": "Best score so far",
    "leaderboard": "Held-out scores",
    "pareto": "Score vs prompt length",
}
STYLE = """body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}code{white-space:pre-wrap}
img{max-width:100%}figure{margin:0}.pair{display:flex;flex-wrap:wrap;gap:2em;align-items:center}.note{color:#555}.right{color:#080}.wrong{color:#b00}"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], name: str = "") -> str:
    """A table of already-escaped cells; a cell starting with ``#`` is right-aligned (a
    number) and written without the mark."""
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c[1:]}</td>' if c.startswith("#") else f"<td>{c}</td>" for c in row
        )
        + "</tr>"
        for row in rows
    )
    opening = f'<table class="{name}">' if name else "<table>"
    return f"{opening}<tr>{header}</tr>{body}</table>"


def _share(part: int, whole: int) -> str:
    return f"#{part / whole:.3f}" if whole else "#&ndash;"


def leaderboard_table(entries: list[LeaderboardEntry], names: list[str]) -> str:
    head = ["rank", "kind", "searcher"] + [f"dev {n}" for n in names]
    head += [f"test {n} [95% CI]" for n in names] + ["tokens", "examples", "prompt"]
    rows = []
    for e in entries:
        cells = [str(e.rank), e.kind, _e(e.searcher)]
        cells += [format_value(e.dev, n) for n in names]
        cells += [format_value(e.test, n, e.test_interval) for n in names]
        cells += ["&ndash;" if e.prompt_tokens is None else str(e.prompt_tokens), str(e.examples)]
        cells.append(f"<code>{_e(describe(e.prompt, width=400))}</code>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></figure>'


def _class(classes: Sequence[str], index: int) -> str:
    return "undecided (tie)" if index == UNDECIDED else classes[index]


def why_section(found: Explanation, store: Store, figures: dict[str, Path]) -> str:
    """The pick's confusion matrix, per-class accuracy, and its disagreements with the best
    hand-written candidate."""
    if found.pick is None:
        return '<h2 id="why">Why the pick wins</h2>' + "".join(
            f'<p class="note">{_e(n)}.</p>' for n in found.notes
        )
    held = store.meta.holdout_split
    pick = found.pick
    scores = "; ".join(
        f"held-out {_e(held)} {_e(name)} {format_value(pick.test, name, pick.test_interval)}"
        for name in store.meta.objective_names
        if pick.test and name in pick.test
    )
    parts = [
        '<h2 id="why">Why the pick wins</h2>',
        f"<p>The pick (leaderboard #1, {_e(pick.kind)} by {_e(pick.searcher)}): "
        f"<code>{_e(describe(pick.prompt, width=400))}</code>{f'; {scores}' if scores else ''}"
        ".</p>",
    ]
    parts += [f'<p class="note">Not shown: {_e(note)}.</p>' for note in found.notes]
    matrix = found.confusion
    if matrix is not None and "confusion" in figures:
        parts.append(
            f"<h3>Confusion matrix and per-class accuracy on the held-out {_e(held)} split</h3>"
        )
        parts.append('<div class="pair">')
        parts.append(_image(figures["confusion"], f"The pick's confusion matrix on {held}"))
        rows = [
            [_e(r.name), f"#{r.examples}", f"#{r.correct}", _share(r.correct, r.examples)]
            + [f"#{r.predicted}", _share(r.correct, r.predicted)]
            for r in matrix.rows()
        ]
        total = ["<b>all classes</b>", f"#{matrix.examples}", f"#{matrix.correct}"]
        total += [_share(matrix.correct, matrix.examples), f"#{matrix.examples - matrix.undecided}"]
        rows.append([*total, _share(matrix.correct, matrix.examples - matrix.undecided)])
        head = ["class", "gold examples", "correct", "accuracy", "predicted as it", "precision"]
        parts.append(_table(head, rows, "classes") + "</div>")
        if matrix.undecided:
            parts.append(
                f'<p class="note">{matrix.undecided} prediction(s) were undecided (several '
                "classes tied for the highest score): counted wrong.</p>"
            )
    if found.comparison is not None and found.task is not None:
        parts.append(_disagreements(found, store))
    return "".join(parts)


def _disagreements(found: Explanation, store: Store) -> str:
    comparison, classes = found.comparison, found.task.classes  # type: ignore[union-attr]
    assert comparison is not None
    rows = comparison.rows
    held = comparison.split == store.meta.holdout_split
    where = (
        f"the held-out {comparison.split} split"
        if held
        else f"the search split ({comparison.split})"
    )
    rank = f"#{comparison.rank}" if comparison.rank else "unranked"
    text = (
        f"<h3>Where the pick and the hand-written prompt disagree, on {_e(where)}</h3>"
        f"<p>Compared with {_e(comparison.chosen)} ({_e(rank)}, {_e(comparison.searcher)}): "
        f"<code>{_e(describe(comparison.baseline, width=400))}</code>. They predict different "
        f"classes on <b>{len(rows)}</b> of the {comparison.shared} examples of {_e(where)} "
        f"both were scored on: the pick is right on {comparison.pick_right}, the "
        f"hand-written prompt on {comparison.baseline_right}, neither on "
        f"{len(rows) - comparison.pick_right - comparison.baseline_right}."
    )
    if not held:
        text += (
            " (The hand-written prompt was not re-scored on the held-out split, so they are "
            "compared on the search split, which chose the pick.)"
        )
    if len(rows) > TABLE_ROWS:
        text += f" The first {TABLE_ROWS}:"
    text += "</p>"

    def mark(predicted: int, gold: int) -> str:
        right = "right" if predicted == gold else "wrong"
        return f'<span class="{right}">{_e(_class(classes, predicted))}</span>'

    cells = [
        [_e(r.id), _e(r.text), _e(classes[r.gold]), mark(r.pick, r.gold), mark(r.baseline, r.gold)]
        for r in rows[:TABLE_ROWS]
    ]
    head = ["example", "text", "gold", "pick", "hand-written"]
    return text + (_table(head, cells, "disagreements") if cells else "")


def provenance_section(store: Store, entries: list[LeaderboardEntry], counted: Census) -> str:
    """Each finalist's origin, readout, cost and selection evidence."""
    ranks = {e.prompt.key: e.rank for e in entries}
    chosen = [e for e in entries if e.rank == 1 or e.test is not None or e.selection][:FINALISTS]
    priced = store.meta.dollars(0, 0) is not None
    rows = []
    for e in chosen:
        cost = counted.cost(e.prompt)
        cells = [f"#{e.rank}", _e(e.kind), _e(e.searcher)]
        cells.append("<br>".join(_e(line) for line in origin(e, ranks)) or "&ndash;")
        cells += [_e(readout(e.prompt)), f"#{cost.examples:,}"]
        cells += [f"#{cost.prompt_tokens:,} / {cost.completion_tokens:,}", f"#{cost.seconds:.1f}"]
        if priced:
            cells.append("#&ndash;" if e.dollars is None else f"#${e.dollars:.4f}")
        cells += [_e(evidence(e.selection)) or "&ndash;", f"<code>{_e(describe(e.prompt))}</code>"]
        rows.append(cells)
    head = ["rank", "kind", "searcher", "origin", "readout", "examples"]
    head += ["tokens (prompt / completion)", "seconds"] + (["dollars"] if priced else [])
    head += ["selection evidence", "prompt"]
    return (
        '<h2 id="origins">Where the finalists came from</h2><p>'
        "The pick, the candidates selection compared "
        "and the finalists re-scored on the held-out split: which searcher proposed them and "
        "from what, how they read the label words, what scoring them cost over all splits (an "
        "ensemble: its members) and the evidence selection ranked them by.</p>"
        + _table(head, rows, "provenance")
    )


def _tree(node: Node) -> str:
    rank = f"#{node.rank}" if node.rank else "unranked"
    line = (
        f"<b>{_e(node.operator or 'proposed')}</b> by {_e(node.searcher)} ({_e(rank)}, "
        f"search score {_e(node.score)}): <code>{_e(node.text)}</code>"
    )
    if node.feedback:
        line += f'<br><span class="note">feedback: {_e(node.feedback)}</span>'
    if node.hidden:
        line += f'<br><span class="note">{node.hidden} more parent(s) not drawn</span>'
    below = "".join(_tree(parent) for parent in node.parents)
    return f"<li>{line}{f'<ul>{below}</ul>' if below else ''}</li>"


def lineage_section(store: Store, entries: list[LeaderboardEntry]) -> str:
    """The family tree of the best-ranked written prompt, and what the writers spent and
    dropped."""
    found, writers = winner(entries), writing_notes(store)
    if found is None and not writers:
        return ""
    parts = ['<h2 id="lineage">Lineage of written prompts</h2>']
    if found is not None:
        entry, prompt = found
        whose = "the pick" if entry.rank == 1 else f"leaderboard #{entry.rank}"
        if prompt.key != entry.prompt.key:
            whose += "'s best-ranked member with parents"
        parts.append(
            f"<p>The family tree of {_e(whose)}: each prompt, then the parents it was written "
            "from, with the operator that made it, its search-split score and the feedback "
            "it was written from.</p>"
        )
        parts.append(f'<ul class="lineage">{_tree(family_tree(store, prompt, entries))}</ul>')
    if writers:
        rows = []
        for name, n in writers:
            dropped = n.get("dropped") or {}
            reasons = ", ".join(f"{r}: {c}" for r, c in sorted(dropped.items())) or "none"
            rows.append(
                [
                    _e(name),
                    f"#{n.get('calls', 0)}",
                    f"#{n.get('writes', 0)}",
                    f"#{n.get('tokens', 0):,}",
                    f"#{float(n.get('seconds', 0)):.1f}",
                    f"#{n.get('feedback_examples', 0)}",
                    f"#{n.get('proposals', 0)}",
                    f"#{n.get('kept', 0)}",
                    _e(reasons),
                ]  # fmt: skip
            )
        head = ["writer", "meta-prompts sent", "answers", "tokens", "seconds",
                "feedback examples scored", "proposals", "kept", "dropped, by reason"]  # fmt: skip
        parts.append(
            "<p>What the writers' own model calls cost (apart from the search budget) and what "
            "their guardrails dropped before scoring:</p>" + _table(head, rows, "writing")
        )
    return "".join(parts)


def census_section(store: Store, counted: Census) -> str:
    """How many candidates were scored, and why only some are ranked."""
    meta = store.meta
    search, held = meta.search_split, meta.holdout_split
    rows = [
        ("scored", counted.scored, f"distinct candidates with an evaluation on {search}"),
        ("complete", counted.complete, f"scored on all of {search}: ranked on the leaderboard"),
        ("stopped early", counted.stopped, "racing stopped them on part of the split"),
        ("failed", counted.failed, "could not be scored (an error)"),
        ("selection pool", counted.pool, f"the best by {search}, compared again for the pick"),
        ("validated", counted.validated, "of those, also scored on unseen training examples"),
        ("re-scored held out", counted.held_out, f"finalists scored on all of {held}"),
        ("ensembles", counted.ensembles, "rows pooling the finalists"),
    ]
    table = _table(
        ["stage", "candidates", "what it means"],
        [[_e(a), f"#{b}", _e(c)] for a, b, c in rows],
        "census",
    )
    reasons = "".join(f"<li>{n} &times; <code>{_e(r)}</code></li>" for r, n in counted.reasons)
    return (
        '<h2 id="scored">What was scored</h2>'
        + table
        + (f"<p>Most common failure reasons:</p><ul>{reasons}</ul>" if reasons else "")
    )


def render(store: Store, figures: dict[str, Path], found: Explanation) -> str:
    config = store.meta.config
    names = store.meta.objective_names
    every = build_leaderboard(store)
    entries = every[:TABLE_ROWS]
    shown = {e.prompt.key for e in entries}
    entries += [e for e in every if e.kind == "ensemble" and e.prompt.key not in shown]
    counted = census(store)
    stop = store.meta.stop_reason
    spent = store.meta.dollars(*store.usage())
    task = TaskConfig.from_stored(config["task"]).source
    sections = []
    for name, png in figures.items():
        if name != "confusion":
            title = TITLES.get(name, f"Training curve: {name.removeprefix('curve-')}")
            sections.append(f"<h2>{_e(title)}</h2>{_image(png, title)}")
    state = "" if store.meta.finished else " (not finished)"
    lineage = lineage_section(store, every)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>promptscout: {_e(config["name"])}</title>
<style>{STYLE}</style>
</head><body>
<h1>Campaign {_e(config["name"])}{state}</h1>
<p>Task {_e(task)} (searched on {_e(config["task"]["search_split"])}, held out:
{_e(config["task"]["holdout_split"])}), model {_e(config["model"]["name"])};
{store.examples_scored(config["task"]["search_split"])} examples scored in
{store.count_evaluations()} evaluations{f"; stopped: {_e(stop)}" if stop else ""}{
        f"; model calls cost ${spent:.4f}" if spent is not None else ""
    }.
Test intervals are 95% (Wilson for accuracy, bootstrap otherwise); examples is what a row cost
(an ensemble's members' scoring); a weighted ensemble's dev values are cross-validated.</p>
<p>Contents: <a href="#why">why the pick wins</a>, <a href="#leaderboard">leaderboard</a>,
<a href="#origins">where the finalists came from</a>,{
        ' <a href="#lineage">lineage of written prompts</a>,' if lineage else ""
    } <a href="#scored">what was scored</a>,
<a href="#figures">figures</a>.</p>
{why_section(found, store, figures)}
<h2 id="leaderboard">Leaderboard</h2>
{leaderboard_table(entries, names)}
{provenance_section(store, every, counted)}
{lineage}
{census_section(store, counted)}
<div id="figures">{"".join(sections)}</div>
</body></html>
"""


def write_report(store: Store, path: Path) -> Path:
    """Write the report HTML to ``path`` (its PNGs beside it) and return ``path``.

    Everything is drawn into a temporary folder beside ``path`` first and then moved into place
    (:func:`os.replace`, atomic on one file system), the page last: a reader sees the previous
    report or this one, never a half-written file."""
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    found = explain(store, build_leaderboard(store))
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{path.stem}-") as draft:
        figures = draw_figures(store, Path(draft), path.stem, found)
        page = render(store, figures, found)
        for png in figures.values():
            os.replace(png, folder / png.name)
        written = Path(draft) / path.name
        written.write_text(page, encoding="utf-8")
        os.replace(written, path)
    return path
