"""A new searcher is one folder plus one registration line: the example in
tests/example_searcher runs a real campaign on the tiny model and task beside the built-ins."""

from __future__ import annotations

import pytest
from campaign_fixtures import run_campaign, saved_state
from example_searcher import CueConfig, CueSearcher

from promptscout.config import load_config
from promptscout.searchers import SEARCHERS, available_searchers, register_searcher
from promptscout.store import Store

CUE = '\n[[searchers]]\ntype = "cue"\nbatch_size = 3\n'


@pytest.fixture
def registered():
    register_searcher(CueSearcher)  # the one line a new searcher needs
    yield
    del SEARCHERS[CueSearcher.type_name]  # the other tests see the built-ins only


def test_a_registered_searcher_runs_in_a_campaign(registered, write_campaign):
    assert "cue" in available_searchers()
    config = load_config(write_campaign(budget=120, extra=CUE))
    board = run_campaign(config)

    words = CueConfig().words
    with Store(config.store_path, readonly=True) as store:
        asked = {key: prompt for key, (prompt, searcher) in store.prompts().items()
                 if searcher == "cue"}  # fmt: skip
        state = saved_state(config, "cue")
    assert sorted(p.template for p in asked.values()) == sorted("{text} " + w for w in words)
    # Ranked on the leaderboard with the manual and random searchers' prompts.
    keys = [key for key, _, _ in board]
    assert set(asked) <= set(keys) and len(keys) > len(asked)
    assert state["asked"] == len(words) and state["best"]["key"] in asked
    cue_rows = [(key, dev) for key, dev, _ in board if key in asked]
    best_dev = max(dev["accuracy"] for _, dev in cue_rows)
    assert dict(cue_rows)[state["best"]["key"]]["accuracy"] == best_dev
