from __future__ import annotations

import numpy as np
import pytest

from promptscout.campaign import Campaign
from promptscout.config import load_config
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.evaluation.local import LocalEvaluator
from promptscout.evaluation.racing import PairedComparison, Race, RacingConfig, race_stages
from promptscout.objectives import Ranking, resolve_objective
from promptscout.prompts import Prompt
from promptscout.store import Store
from promptscout.tasks import load_task

IDS = tuple(f"dev-{i}" for i in range(32))


def test_stages_are_nested_seeded_and_end_with_the_split():
    stages = race_stages(RacingConfig(first=8, factor=2), IDS, seed=0)
    assert [len(s) for s in stages] == [8, 16, 32] and stages[-1] == IDS
    assert set(stages[0]) < set(stages[1]) < set(stages[2])
    assert stages == race_stages(RacingConfig(first=8, factor=2), IDS, seed=0)
    assert stages[0] != race_stages(RacingConfig(first=8, factor=2), IDS, seed=1)[0]
    assert race_stages(RacingConfig(enabled=False), IDS, seed=0) == [IDS]
    assert race_stages(RacingConfig(first=40), IDS, seed=0) == [IDS]


def test_config_validation():
    with pytest.raises(PromptscoutError, match="factor"):
        RacingConfig(factor=1.0)
    with pytest.raises(PromptscoutError, match="first"):
        RacingConfig(first=1)


def test_paired_comparison_uses_per_example_terms():
    task = load_task("sst-2")
    ids = [e.id for e in task.dev[:8]]
    labels = [e.label for e in task.dev[:8]]
    comparison = PairedComparison(
        task, [resolve_objective("accuracy")], Ranking((("accuracy", "maximize"),)), z=1.0
    )
    right = [[0.0, -5.0] if y == 0 else [-5.0, 0.0] for y in labels]
    wrong = [[-5.0, 0.0] if y == 0 else [0.0, -5.0] for y in labels]
    prompt = Prompt("{text} It was", ("bad", "good"))
    good = comparison.per_example(prompt, Evaluation("a", "dev", tuple(ids), right), ids)
    bad = comparison.per_example(prompt, Evaluation("b", "dev", tuple(ids), wrong), ids)
    assert good.tolist() == [1.0] * 8 and bad.tolist() == [0.0] * 8
    assert comparison.clearly_behind(bad, good) and not comparison.clearly_behind(good, bad)
    mixed = np.array([1.0, 0.0] * 4)
    assert not comparison.clearly_behind(mixed, good[:8] * 0 + np.array([0.0, 1.0] * 4))


def test_a_stage_is_recorded_in_prompt_order_however_the_evaluator_groups_it(
    tiny_causal, tiny_task_dir
):
    # The local evaluator scores prompts grouped by label words, so it finishes B after C.
    # Recording in prompt order keeps the store's order (which breaks leaderboard ties) the
    # same for a batch resumed after a kill as for the uninterrupted one.
    task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
    objectives = [resolve_objective("accuracy")]
    evaluator = LocalEvaluator(tiny_causal, task, objectives)
    ids = tuple(e.id for e in task.dev)
    a, b, c = (
        Prompt("{text} It was", ("bad", "good")),
        Prompt("{text} It was", ("terrible", "great")),
        Prompt("Review: {text}", ("bad", "good")),
    )
    yielded = [e.prompt_key for e in evaluator.iter_evaluate([a, b, c], "dev", ids)]
    assert yielded == [a.key, c.key, b.key]
    ranking = Ranking((("accuracy", "maximize"),))
    race = Race([ids], PairedComparison(task, objectives, ranking, z=1.0))
    stored: dict[str, Evaluation] = {}

    def run_batch() -> list[str]:
        recorded: list[str] = []

        def record(prompt, evaluation):
            recorded.append(prompt.key)
            stored[prompt.key] = evaluation

        race.run(
            [a, b, c],
            None,
            lambda p, _: stored.get(p.key),
            lambda todo, ids: evaluator.iter_evaluate(todo, "dev", ids),
            record,
        )
        return recorded

    assert run_batch() == [a.key, b.key, c.key]
    del stored[b.key], stored[c.key]  # a kill after the first prompt was stored
    assert run_batch() == [b.key, c.key]


RACING = "\n[racing]\nfirst = 2\nfactor = 2\nz = 0.5\n"


def run(config):
    with Store(config.store_path) as store:
        campaign = Campaign(config, store, progress=False)
        try:
            return campaign.run()
        finally:
            campaign.close()


def test_racing_scores_fewer_examples_for_the_same_candidates(write_campaign, tmp_path):
    plain = load_config(
        write_campaign("plain.toml", budget=100000, extra="\n[racing]\nenabled = false\n")
    )
    plain.budget.candidates = 24
    # Cross-entropy differs between prompts even on a random model, whose accuracies all tie.
    plain.objective.names = ["cross_entropy", "accuracy"]
    plain.store = str(tmp_path / "plain.db")
    raced = load_config(write_campaign("raced.toml", budget=100000, extra=RACING))
    raced.budget.candidates = 24
    raced.objective.names = ["cross_entropy", "accuracy"]
    raced.store = str(tmp_path / "raced.db")
    a, b = run(plain), run(raced)
    assert a.stop_reason == b.stop_reason == "candidate budget spent"
    assert b.examples_scored < a.examples_scored == 24 * 8
    with Store(raced.store_path, readonly=True) as store:
        ranked = [e for e in b.leaderboard if e.kind == "prompt"]  # ensembles aside
        stopped = store.count_prompts("dev") - len(ranked)
        # every stored evaluation's cost is what it added: nested stages never pay twice
        assert store.examples_scored("dev") == b.examples_scored
    assert stopped > 0
    # racing only stops candidates, so the best full-split candidate it kept is also in the
    # plain run (the pick may be an ensemble of either run's leaders: prompts are compared)
    assert ranked[0].prompt.key in {e.prompt.key for e in a.leaderboard if e.kind == "prompt"}
