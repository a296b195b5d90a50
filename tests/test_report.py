"""``promptscout report``: the PNG figures (decoded and checked), their embedding in the HTML, the
leaderboard table, the data behind the plots, what the page explains about the pick (confusion
matrix, per-class accuracy, disagreements with the hand-written prompt, provenance, counts), the
honest axes, and the live report a campaign rewrites as it runs."""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from campaign_fixtures import campaign_text
from PIL import Image

from promptscout.campaign import Campaign
from promptscout.campaign.live_report import LiveReport
from promptscout.campaign.observer import CampaignObserver
from promptscout.cli import main
from promptscout.config import load_config
from promptscout.ensemble.types import Ensemble
from promptscout.evaluation.base import Evaluation
from promptscout.leaderboard import LeaderboardEntry, build_leaderboard
from promptscout.plots import Point, pareto_front
from promptscout.prompts import Prompt
from promptscout.report import best_so_far, searcher_curves, write_report
from promptscout.report.curves import value_axis
from promptscout.report.provenance import origin
from promptscout.store import Store
from promptscout.tasks import CONTENT_FREE_SPLIT, load_task

OPTIONS = 'top_k = 3\nensembles = ["average", "weighted"]\ncalibrate = true'


LIVE: dict[str, object] = {}  # what the live report did during the fixture's campaign


class Snapshot(CampaignObserver):
    """Keeps the first live report the campaign wrote while it ran (after the LiveReport)."""

    def turn_ended(self, campaign, searcher, outcomes, turn):
        page = campaign.store.path.with_suffix(".html")
        if page.exists() and "first" not in LIVE:
            LIVE["first"] = (turn, page.read_text())


@pytest.fixture(scope="module")
def campaign_store(tmp_path_factory, tiny_causal_dir, tiny_task_dir):
    """A finished tiny campaign with ensembles, whose random searcher declared a training curve
    through its reporting hook (as the RL searcher does), and which rewrote its live report
    (``[report] every = 2``) beside its store as it ran."""
    folder = tmp_path_factory.mktemp("report")
    text = campaign_text(tiny_causal_dir, tiny_task_dir, folder / "tiny.db", budget=160)
    path = folder / "campaign.toml"
    path.write_text(text.replace("top_k = 2", OPTIONS) + "\n[report]\nevery = 2\n")
    config = load_config(path)
    store = Store(config.store_path)
    campaign = Campaign(config, store, progress=False)
    campaign.observers.append(Snapshot())
    try:
        campaign.run()
    finally:
        campaign.close()
    live = [o for o in campaign.observers if isinstance(o, LiveReport)]
    LIVE["written"], LIVE["warned"] = (live[0].written, live[0].warned) if live else (0, None)
    curve = [[step, float(np.tanh(step / 10))] for step in range(30)]
    store.meta.set_searcher_report("random", {"curves": [{"points": curve, "y": "reward"}]})
    store.close()
    return config.store_path


@pytest.fixture
def finished_store(campaign_store, tmp_path):
    """A copy of that store for one test (tests may write to it)."""
    return shutil.copy(campaign_store, tmp_path / "tiny.db")


def assert_real_png(path, min_size=(400, 250)):
    image = Image.open(path)
    image.load()  # decodes the whole file
    assert image.format == "PNG" and image.size >= min_size
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    ink = (pixels < 200).mean()  # share of dark pixels: axes, text, bars, lines
    assert 0.01 < ink < 0.6, f"{path} looks blank or solid ({ink:.3f} dark)"
    assert len(np.unique(pixels)) > 20


def test_report_embeds_every_figure_and_the_table(finished_store, tmp_path, capsys):
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(finished_store), "-o", str(out)]) == 0
    page = out.read_text()
    pngs = sorted(out.parent.glob("report-*.png"))
    names = {p.name for p in pngs}
    assert names == {
        "report-confusion.png",
        "report-progress.png",
        "report-leaderboard.png",
        "report-pareto.png",
        "report-curve-0.png",
    }
    for png in pngs:
        assert_real_png(png)
        # Embedded byte for byte, so the HTML alone is the report.
        assert base64.b64encode(png.read_bytes()).decode("ascii") in page
    assert page.count("data:image/png;base64,") == 5
    assert "Training curve: random" in page
    # The table: every ranked row, ensembles included, with intervals on the finalists.
    with Store(finished_store, readonly=True) as store:
        rows = build_leaderboard(store)
    # (The leaderboard's table follows its heading; the pick's explanation comes first.)
    start = page.index('<h2 id="leaderboard">')
    table = page[page.index("<table>", start) : page.index("</table>", start)]
    assert table.count("<tr>") == len(rows) + 1
    kinds = re.findall(r"<tr><td>\d+</td><td>(\w+)</td>", table)
    assert kinds == [e.kind for e in rows] and "ensemble" in kinds
    assert re.search(r"<td>\d\.\d{4} \[\d\.\d{3}, \d\.\d{3}\]</td>", table)


def test_best_so_far_counts_only_whole_split_scores(finished_store):
    with Store(finished_store, readonly=True) as store:
        curves = best_so_far(store)
        whole = tuple(store.get_meta("search_examples"))
        spent = store.examples_scored("dev")
        full = {}
        for s in store.evaluations("dev"):
            if s.evaluation.ok and s.evaluation.example_ids == whole:
                full.setdefault(s.searcher, []).append(s.evaluation.objectives["accuracy"])
    assert set(curves) == {"manual", "random"}
    for searcher, curve in curves.items():
        xs, ys = zip(*curve, strict=True)
        assert list(xs) == sorted(xs) and xs[-1] <= spent
        assert list(ys) == sorted(ys)  # accuracy ranks: the best so far never drops
        assert ys[-1] == max(full[searcher])


def test_searcher_curves_accept_the_documented_forms(finished_store, tmp_path):
    with Store(finished_store) as store:
        curves = searcher_curves(store)
        assert list(curves) == ["random"] and curves["random"]["y"] == "reward"
        assert len(curves["random"]["points"]) == 30
        store.meta.set_searcher_report("manual", {"curves": [[[0, 1.0], [1, 2.0]]]})
        store.meta.set_searcher_report("random", {"curves": ["not a curve"]})
        curves = searcher_curves(store)
    assert list(curves) == ["manual"] and curves["manual"]["points"] == [(0.0, 1.0), (1.0, 2.0)]


def test_pareto_front():
    points = [Point(10, 0.7, "a"), Point(5, 0.6, "a"), Point(20, 0.65, "b"), Point(5, 0.5, "b")]
    assert [(p.tokens, p.value) for p in pareto_front(points)] == [(5, 0.6), (10, 0.7)]
    lower = pareto_front(points, maximize=False)
    assert [(p.tokens, p.value) for p in lower] == [(5, 0.5)]


# -- what the page explains ---------------------------------------------------------------------


def _rows(page: str, name: str) -> list[list[str]]:
    """The body rows of the page's table of class ``name``, as plain text cells."""
    start = page.index(f'<table class="{name}">')
    table = page[start : page.index("</table>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", r)
        ]
        for r in rows
    ]


def _predicted(outputs) -> list[int]:
    """Each row's class, -1 where classes tie (as the accuracy objective decides)."""
    scores = np.asarray(outputs, dtype=np.float64)
    tied = (scores == scores.max(axis=1, keepdims=True)).sum(axis=1) > 1
    return np.where(tied, -1, scores.argmax(axis=1)).tolist()


def _pick_outputs(store: Store, pick: LeaderboardEntry, ids) -> np.ndarray:
    """The pick's held-out outputs from the store: a prompt's own, an ensemble's members'
    pooled (calibrated with their content-free outputs when it calibrates)."""
    members = pick.prompt.members if pick.kind == "ensemble" else (pick.prompt,)
    outputs = [np.asarray(store.find_evaluation(p.key, "test", ids).outputs) for p in members]
    if pick.kind == "prompt":
        return outputs[0]
    free = None
    if pick.prompt.calibrate:
        found = [store.latest_evaluation(p.key, CONTENT_FREE_SPLIT) for p in members]
        free = [np.asarray(e.outputs) for e in found]
    return pick.prompt.combine(outputs, free)


def test_the_picks_confusion_matrix_and_per_class_accuracy(finished_store, tiny_task_dir, tmp_path):
    task = load_task(str(tiny_task_dir))
    with Store(finished_store, readonly=True) as store:
        pick = build_leaderboard(store)[0]
        ids = store.meta.holdout_examples
        predicted = _predicted(_pick_outputs(store, pick, ids))
        page = write_report(store, tmp_path / "r.html").read_text()
    assert "Confusion matrix and per-class accuracy on the held-out test split" in page
    assert 'alt="The pick&#x27;s confusion matrix on test"' in page
    gold = [task.example(i).label for i in ids]
    rows = _rows(page, "classes")
    assert [r[0] for r in rows] == [*task.classes, "all classes"]
    for c, row in enumerate(rows[:-1]):
        examples = sum(g == c for g in gold)
        correct = sum(g == p == c for g, p in zip(gold, predicted, strict=True))
        assert [int(x) for x in row[1:3]] == [examples, correct]
        assert int(row[4]) == predicted.count(c)
        assert row[3] == (f"{correct / examples:.3f}" if examples else "\u2013")
    # The classes' correct predictions add up to the pick's held-out accuracy.
    total = rows[-1]
    assert int(total[1]) == len(ids) == sum(int(r[1]) for r in rows[:-1])
    assert int(total[2]) == sum(int(r[2]) for r in rows[:-1])
    assert int(total[2]) == round(pick.test["accuracy"] * len(ids))


def test_disagreements_with_the_hand_written_prompt_match_the_stored_outputs(
    finished_store, tiny_task_dir, tmp_path
):
    task = load_task(str(tiny_task_dir))
    with Store(finished_store) as store:
        entries = build_leaderboard(store)
        pick = entries[0]
        baseline = next(
            e for e in entries if e.searcher == "manual" and e.prompt.key != pick.prompt.key
        )
        ids = store.meta.holdout_examples
        mine = dict(zip(ids, _predicted(_pick_outputs(store, pick, ids)), strict=True))
        # The hand-written prompt's outputs on 14 of the 16 held-out examples (only examples both
        # were scored on count), disagreeing with the pick on every third.
        scored = ids[2:]
        theirs = {i: (1 - max(mine[i], 0) if k % 3 == 0 else mine[i]) for k, i in enumerate(scored)}
        rows = {0: [0.0, -1.0], 1: [-1.0, 0.0], -1: [0.0, 0.0]}
        outputs = [rows[c] for c in theirs.values()]
        evaluation = Evaluation(baseline.prompt.key, "test", scored, outputs, {"accuracy": 0.5})
        store.add_evaluation(baseline.prompt, baseline.searcher, evaluation)
        page = write_report(store, tmp_path / "r.html").read_text()

    def name(c: int) -> str:
        return "undecided (tie)" if c == -1 else task.classes[c]

    expected = [
        [i, task.example(i).fields["text"], task.classes[task.example(i).label], name(mine[i])]
        + [name(theirs[i])]
        for i in scored
        if mine[i] != theirs[i]
    ]
    assert expected and _rows(page, "disagreements") == expected
    where = "of the held-out test split"
    assert f"on <b>{len(expected)}</b> of the {len(scored)} examples {where}" in page
    right = sum(row[3] == row[2] for row in expected)
    assert (
        f"the pick is right on {right}, the hand-written prompt on {len(expected) - right}" in page
    )


def test_provenance_rows_show_origin_readout_cost_and_evidence(finished_store, tmp_path):
    with Store(finished_store, readonly=True) as store:
        entries = build_leaderboard(store)
        page = write_report(store, tmp_path / "r.html").read_text()
    ranks = {e.prompt.key: e.rank for e in entries}
    expected = [e for e in entries if e.rank == 1 or e.test is not None or e.selection][:20]
    rows = _rows(page, "provenance")
    assert [int(r[0]) for r in rows] == [e.rank for e in expected]
    assert any(e.kind == "ensemble" for e in expected) and any(e.selection for e in expected)
    for row, entry in zip(rows, expected, strict=True):
        rank, kind, searcher, came_from, readout, examples, tokens, seconds, evidence, _ = row
        assert (kind, searcher, int(examples.replace(",", ""))) == (
            entry.kind,
            entry.searcher,
            entry.examples,
        )
        assert re.fullmatch(r"[\d,]+ / [\d,]+", tokens) and float(seconds) >= 0
        if isinstance(entry.prompt, Ensemble):
            members = ", ".join(f"#{ranks[m.key]}" for m in entry.prompt.members)
            assert came_from == f"pools {members}"
            assert readout.startswith(f"{entry.prompt.method} of {len(entry.prompt.members)}")
        else:
            assert "/".join(entry.prompt.label_words) in readout
        if entry.selection:
            assert f"over {entry.selection['search_examples']} search" in evidence
        else:
            assert evidence == "\u2013"


def test_origin_shows_the_searcher_notes_there_are():
    parent = Prompt("{text} It was", ("bad", "good"))
    child = Prompt(
        "{text} So it was",
        ("bad", "good"),
        metadata={"searcher": "evolutionary", "parents": [parent.key, "gone"], "generation": 3},
    )
    entry = LeaderboardEntry(1, "evolutionary", "prompt", child, None, None, 0.0)
    assert origin(entry, {parent.key: 4}) == ["parents: #4, gone", "generation: 3"]
    soft = Prompt("{text}", ("bad", "good"), metadata={"projection_of": "ab12", "epoch": 2})
    assert origin(LeaderboardEntry(2, "soft", "prompt", soft, None, None, 0.0), {}) == [
        "projection of: ab12",
        "epoch: 2",
    ]


def test_counts_say_why_only_some_candidates_are_ranked(finished_store, tmp_path):
    with Store(finished_store) as store:
        broken = Prompt("{text} zzz", ("bad", "good"))
        ids = store.meta.search_examples[:2]
        error = "model crashed: out of memory\nTraceback ..."
        store.add_evaluation(broken, "random", Evaluation(broken.key, "dev", ids, error=error))
        # One that racing stopped after a first minibatch (the tiny split is one stage).
        raced = Prompt("{text} yyy", ("bad", "good"))
        store.add_evaluation(raced, "random", Evaluation(raced.key, "dev", ids, [[0.0, -1.0]] * 2))
        page = write_report(store, tmp_path / "r.html").read_text()
        entries = build_leaderboard(store)
        whole = store.meta.search_examples
        by_key: dict[str, list[Evaluation]] = {}
        for stored in store.evaluations("dev"):
            by_key.setdefault(stored.evaluation.prompt_key, []).append(stored.evaluation)
        selection, ensembles = store.meta.selection, store.meta.ensembles
    complete = {k for k, es in by_key.items() if any(e.ok and e.example_ids == whole for e in es)}
    failed = {k for k, es in by_key.items() if k not in complete and any(not e.ok for e in es)}
    counts = {row[0]: int(row[1]) for row in _rows(page, "census")}
    assert counts == {
        "scored": len(by_key),
        "complete": len(complete),
        "stopped early": len(by_key) - len(complete) - len(failed),
        "failed": len(failed),
        "selection pool": len(selection),
        "validated": sum(1 for r in selection if r["validation_examples"]),
        "re-scored held out": sum(1 for e in entries if e.kind == "prompt" and e.test),
        "ensembles": len(ensembles),
    }
    assert counts["complete"] == sum(1 for e in entries if e.kind == "prompt")
    assert counts["failed"] == 1 and counts["stopped early"] >= 1
    assert "1 &times; <code>model crashed: out of memory</code>" in page


def test_axes_start_at_chance_or_zero_and_name_metric_and_split(
    finished_store, tmp_path, monkeypatch
):
    axis = value_axis("accuracy", "dev accuracy", [0.6, 0.9], 2)
    assert axis.low == 0.5 and axis.label == "dev accuracy (axis from chance, 1/2 = 0.50)"
    axis = value_axis("accuracy", "dev accuracy", [0.3, 0.9], 2)
    assert axis.low == 0.0 and axis.label == "dev accuracy (axis from 0)"
    axis = value_axis("cross_entropy", "dev cross_entropy", [0.7], 2, maximize=False)
    assert axis.low is None and axis.label == "dev cross_entropy (lower is better)"
    # Every figure of a metric gets such an axis, named after its metric and split.
    from promptscout import plots
    from promptscout.report import draw_figures

    seen = {}

    def spy(name, draw):
        def plot(*args, **kwargs):
            seen[name] = args[1]
            return draw(*args, **kwargs)

        return plot

    for name in ("plot_progress", "plot_leaderboard", "plot_pareto"):
        monkeypatch.setattr(plots, name, spy(name, getattr(plots, name)))
    with Store(finished_store, readonly=True) as store:
        draw_figures(store, tmp_path, "x")
    assert seen["plot_progress"].label.startswith("best dev accuracy (axis from ")
    assert seen["plot_pareto"].label.startswith("dev accuracy (axis from ")
    assert seen["plot_leaderboard"].label.startswith("held-out test accuracy (axis from ")
    assert all(axis.low in (0.0, 0.5) for axis in seen.values())


# -- the live report ----------------------------------------------------------------------------


def test_the_campaign_rewrote_its_live_report(campaign_store):
    # Every 2 turns while it ran (before selection and the held-out split), and at the end.
    turn, first = LIVE["first"]
    assert turn == 1 and "(not finished)" in first
    assert "the pick has no outputs on the held-out test split yet" in first
    assert LIVE["written"] >= 3 and LIVE["warned"] == set()
    page = campaign_store.with_suffix(".html")
    text = page.read_text()
    assert "Why the pick wins" in text and "(not finished)" not in text  # the end's rewrite
    assert page.with_name("tiny-confusion.png").exists()
    assert not list(page.parent.glob(".tiny-*"))  # no drafts left behind


def test_live_report_every_n_turns_and_at_the_end(finished_store, tmp_path):
    path = tmp_path / "live" / "report.html"
    live = LiveReport(2, str(path))
    with Store(finished_store, readonly=True) as store:
        campaign = SimpleNamespace(store=store)
        assert LiveReport(1).target(campaign) == finished_store.with_suffix(".html")
        live.turn_ended(campaign, "manual", [], 0)
        assert not path.exists()
        live.turn_ended(campaign, "random", [], 1)
        assert path.exists() and live.written == 1
        live.finished(campaign, None)
    assert live.written == 2


def test_live_report_failure_is_one_warning(finished_store, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    live = LiveReport(1, str(blocker / "report.html"))
    with Store(finished_store, readonly=True) as store:
        campaign = SimpleNamespace(store=store)
        for turn in range(3):
            live.turn_ended(campaign, "manual", [], turn)
        live.finished(campaign, None)
    err = capsys.readouterr().err
    assert err.count("warning: could not write the report") == 1 and live.written == 0
    assert len(live.warned) == 1


def test_the_report_is_replaced_atomically(finished_store, tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    with Store(finished_store, readonly=True) as store:
        write_report(store, path)
        before = path.read_bytes()
        moves = []
        replace = os.replace

        def spy(src, dst):
            moves.append((os.fspath(src), os.fspath(dst)))
            replace(src, dst)

        monkeypatch.setattr(os, "replace", spy)
        write_report(store, path)
        # Drawn in a draft folder beside it, the page moved into place last, in one step.
        assert moves[-1][1] == str(path) and os.path.dirname(moves[-1][0]) != str(tmp_path)
        assert os.path.dirname(os.path.dirname(moves[-1][0])) == str(tmp_path)

        import promptscout.report.page as page

        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(page, "render", broken)
        with pytest.raises(RuntimeError):
            write_report(store, path)
    assert path.read_bytes() == before  # a failed rewrite leaves the last report whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
