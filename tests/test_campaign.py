from __future__ import annotations

import json

import pytest
from campaign_fixtures import campaign_text, dying_factory, write_tiny_task

from promptscout.campaign import Campaign
from promptscout.campaign.budget import Allowance, ask_size
from promptscout.campaign.rescore import MIN_HOLDOUT, affordable
from promptscout.config import load_config
from promptscout.leaderboard import build_leaderboard
from promptscout.store import Store


def run(config, **kwargs):
    store = Store(config.store_path)
    campaign = Campaign(config, store, progress=False, **kwargs)
    try:
        return campaign.run(), store
    finally:
        store.close()


def board(path):
    with Store(path, readonly=True) as store:
        return [(e.prompt.key, e.searcher, e.dev, e.test) for e in build_leaderboard(store)]


def test_campaign_end_to_end(write_campaign):
    config = load_config(write_campaign(budget=160))
    result, _ = run(config)
    # 8 dev examples per candidate: the budget allows exactly 20 candidates.
    assert result.examples_scored == 160
    assert result.stop_reason == "example budget spent"
    # Ensembles are on by default: the average and the weighted vote of the top 2 join the board.
    entries = [e for e in result.leaderboard if e.kind == "prompt"]
    assert len(entries) == 20
    pooled = sorted(e.prompt.method for e in result.leaderboard if e.kind == "ensemble")
    assert pooled == ["average", "weighted"] and len(result.leaderboard) == 22
    assert {e.searcher for e in entries} == {"manual", "random"}
    scores = [e.dev["accuracy"] for e in entries]
    assert scores == sorted(scores, reverse=True)
    assert all(e.test is not None for e in entries[:2]) and all(e.test is None for e in entries[2:])
    exported = json.loads(config.export_path.read_text())
    assert exported["entries"][0]["prompt"] == entries[0].prompt.to_dict()
    # The export's rows: the 2 finalists plus one per ensemble.
    assert exported["model"]["fingerprint"] and len(exported["entries"]) == 2 + 2


def test_duplicates_are_scored_once(write_campaign):
    extra = '\n[[searchers]]\ntype = "manual"\nname = "again"\ntemplates = ["{text} It was"]\n'
    config = load_config(write_campaign(budget=80, extra=extra))
    result, _ = run(config)
    with Store(config.store_path, readonly=True) as store:
        keys = [s.evaluation.prompt_key for s in store.evaluations("dev")]
    assert len(keys) == len(set(keys)) == result.examples_scored // 8


def test_the_first_ask_is_one_prompt_whatever_the_workers_then_enough_for_all_of_them():
    free = Allowance(None)
    # One prompt before anything leads, on one worker or four: a Ray campaign asks what a
    # local one asks (the evaluator spreads a prompt's examples over its actors).
    assert ask_size(8, 1, free, nothing_to_race=True) == ask_size(8, 4, free, True) == 1
    assert ask_size(2, 4, free, nothing_to_race=False) == 4
    assert ask_size(8, 4, free, nothing_to_race=False) == 8
    assert ask_size(8, 4, Allowance(3), nothing_to_race=False) == 3


@pytest.mark.parametrize("racing", [True, False])
def test_until_a_candidate_leads_a_turn_asks_for_one_prompt(write_campaign, racing):
    extra = "" if racing else "\n[racing]\nenabled = false\n"
    config = load_config(write_campaign(budget=80, extra=extra))
    run(config)
    with Store(config.store_path, readonly=True) as store:
        turns = [s.searcher for s in store.evaluations("dev")]
    # manual has 2 templates and batch_size 2, random batch_size 3
    if racing:  # manual's first turn: 1 prompt (nothing to race against yet), then batches
        assert turns[:8] == ["manual"] + ["random"] * 3 + ["manual"] + ["random"] * 3
    else:  # without racing a first batch costs what later ones do: batch_size from the start
        assert turns[:8] == ["manual"] * 2 + ["random"] * 6


@pytest.mark.parametrize("kill_at", [11, 28])
@pytest.mark.parametrize(
    "racing", ["", "\n[racing]\nfirst = 2\nz = 0.5\n"], ids=["plain", "racing"]
)
def test_killed_campaign_resumes_to_the_same_leaderboard(write_campaign, tmp_path, racing, kill_at):
    straight = load_config(write_campaign("a.toml", budget=240, extra=racing))
    straight.objective.names = ["cross_entropy", "accuracy"]
    straight.store = str(tmp_path / "straight.db")
    straight.export = str(tmp_path / "straight.json")
    run(straight)

    killed = load_config(write_campaign("b.toml", budget=240, extra=racing))
    killed.objective.names = ["cross_entropy", "accuracy"]
    killed.store = str(tmp_path / "killed.db")

    with pytest.raises(KeyboardInterrupt):
        run(killed, evaluator_factory=dying_factory(kill_at))  # dies mid-batch
    with Store(killed.store_path, readonly=True) as store:
        assert store.count_evaluations() == kill_at - 1
        before = {s.id: s.evaluation.to_dict() for s in store.evaluations()}
    run(killed)  # resume: same config, same store
    with Store(killed.store_path, readonly=True) as store:
        after = {s.id: s.evaluation.to_dict() for s in store.evaluations()}
    assert all(after[i] == before[i] for i in before)  # nothing lost or rewritten
    assert board(killed.store_path) == board(straight.store_path)


def test_failing_objective_marks_candidates_not_the_campaign(write_campaign, tmp_path, monkeypatch):
    (tmp_path / "broken_metric.py").write_text("def metric(data):\n    raise ValueError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load_config(write_campaign(budget=32))
    config.objective.names = ["accuracy", "broken_metric:metric"]
    result, _ = run(config)
    with Store(config.store_path, readonly=True) as store:
        errors = [s.evaluation.error for s in store.evaluations("dev")]
    assert errors and all("objective error: boom" in e for e in errors)
    assert result.leaderboard == []


def test_time_budget_stops_the_search(write_campaign):
    config = load_config(write_campaign(budget=100000))
    config.budget.minutes = 1e-6
    result, _ = run(config)
    assert result.stop_reason == "time budget spent"


def test_top_k_zero_rescores_nothing(write_campaign):
    config = load_config(write_campaign(budget=32))
    config.leaderboard.top_k = 0
    result, _ = run(config)
    assert result.leaderboard and all(e.test is None for e in result.leaderboard)


def test_the_held_out_sample_is_what_the_finalists_measured_speed_buys():
    # Seconds per example: a and b timed, c untimed (costs their median, 0.5).
    timed = {"a": 0.25, "b": 0.75}
    assert affordable(timed, ["a", "b", "c"], minutes=3) == 120  # 180 s / 1.5 s
    assert affordable(timed, ["a", "b", "c"], minutes=0.1) == MIN_HOLDOUT  # never fewer
    assert affordable({}, ["a"], minutes=2) is None  # nothing timed: no sample


def test_rescore_minutes_re_scores_a_seeded_sample_chosen_once(tmp_path, tiny_causal_dir):
    task = write_tiny_task(tmp_path / "task", test_copies=20)  # 320 held-out examples
    path = tmp_path / "campaign.toml"
    path.write_text(campaign_text(tiny_causal_dir, task, tmp_path / "tiny.db", budget=80))
    config = load_config(path)
    config.leaderboard.rescore_minutes = 1e-4  # what no finalist can do: the minimum sample
    result, _ = run(config)
    with Store(config.store_path, readonly=True) as store:
        held = store.meta.holdout_examples
        scored = [s.evaluation.example_ids for s in store.evaluations("test")]
    assert len(held) == MIN_HOLDOUT and len(set(held)) == MIN_HOLDOUT
    assert set(held) < {f"test-{i}" for i in range(320)}
    assert held != tuple(f"test-{i}" for i in range(MIN_HOLDOUT))  # a random sample
    assert len(scored) == 2 and all(ids == held for ids in scored)
    rows = [e for e in result.leaderboard if e.test is not None]
    assert len(rows) == 4  # the 2 finalists and the 2 ensembles, all on the sample

    # A resume that re-scores one more finalist with all the time in the world keeps the
    # sample the others were scored on.
    config.leaderboard.top_k, config.leaderboard.rescore_minutes = 3, 1000.0
    run(config)
    with Store(config.store_path, readonly=True) as store:
        assert store.meta.holdout_examples == held
        scored = [s.evaluation.example_ids for s in store.evaluations("test")]
    assert len(scored) == 3 and all(ids == held for ids in scored)
