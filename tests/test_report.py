"""``promptscout report``: the PNG figures (decoded and checked), their embedding in the HTML, the
leaderboard table, and the data behind the plots."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from PIL import Image

from promptscout.campaign import Campaign
from promptscout.cli import main
from promptscout.config import load_config
from promptscout.leaderboard import build_leaderboard
from promptscout.plots import Point, pareto_front
from promptscout.report import best_so_far, searcher_curves
from promptscout.store import Store

OPTIONS = 'top_k = 3\nensembles = ["average", "weighted"]\ncalibrate = true'


@pytest.fixture
def finished_store(write_campaign, tmp_path):
    """A finished tiny campaign with ensembles, whose random searcher declared a training curve
    through its reporting hook (as the RL searcher does)."""
    path = write_campaign(budget=160)
    path.write_text(path.read_text().replace("top_k = 2", OPTIONS))
    config = load_config(path)
    store = Store(config.store_path)
    campaign = Campaign(config, store, progress=False)
    try:
        campaign.run()
    finally:
        campaign.close()
    curve = [[step, float(np.tanh(step / 10))] for step in range(30)]
    store.meta.set_searcher_report("random", {"curves": [{"points": curve, "y": "reward"}]})
    store.close()
    return config.store_path


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
        "report-progress.png",
        "report-leaderboard.png",
        "report-pareto.png",
        "report-curve-0.png",
    }
    for png in pngs:
        assert_real_png(png)
        # Embedded byte for byte, so the HTML alone is the report.
        assert base64.b64encode(png.read_bytes()).decode("ascii") in page
    assert page.count("data:image/png;base64,") == 4
    assert "Training curve: random" in page
    # The table: every ranked row, ensembles included, with intervals on the finalists.
    with Store(finished_store, readonly=True) as store:
        rows = build_leaderboard(store)
    table = page[page.index("<table>") : page.index("</table>")]
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
