"""Ensembles, contextual calibration and confidence intervals: the pooling math on known numbers,
then whole campaigns on the tiny model (ensemble rows, export, ``evaluate`` of an ensemble)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from promptscout.campaign import Campaign
from promptscout.cli import main
from promptscout.config import load_config
from promptscout.ensemble import (
    Ensemble,
    average,
    calibrate,
    class_log_probs,
    cross_validated,
    fit_weights,
    vote,
    weighted,
)
from promptscout.ensemble.weights import _loss_and_grad
from promptscout.errors import PromptscoutError
from promptscout.evaluation.local import LocalEvaluator
from promptscout.leaderboard import build_leaderboard
from promptscout.objectives import ObjectiveInput, resolve_objective
from promptscout.objectives.intervals import bootstrap_interval, wilson_interval
from promptscout.prompts import Prompt
from promptscout.store import Store
from promptscout.tasks import CONTENT_FREE_SPLIT, load_task

A = Prompt("Review: {text}\nSentiment:", ("bad", "good"))
B = Prompt("{text} It was", ("bad", "good"))
C = Prompt("{text} It was", ("terrible", "great"))


def probs(log_probs: np.ndarray) -> np.ndarray:
    return np.exp(log_probs)


# -- pooling on known numbers ----------------------------------------------------------------


def test_class_log_probs_renormalise_over_the_classes():
    members = class_log_probs([np.log([[0.1, 0.3]]), np.log([[0.02, 0.02]])])
    assert probs(members) == pytest.approx(np.array([[[0.25, 0.75]], [[0.5, 0.5]]]))


def test_average_is_the_mean_distribution():
    members = class_log_probs([np.log([[0.9, 0.1], [0.2, 0.8]]), np.log([[0.5, 0.5], [0.6, 0.4]])])
    assert probs(average(members)) == pytest.approx(np.array([[0.7, 0.3], [0.4, 0.6]]))


def test_vote_follows_the_majority_and_breaks_ties_by_average():
    # One member is very sure of class 0, two lean to class 1: the average says 0, the vote 1.
    sure = class_log_probs([np.log([[0.99, 0.01]]), np.log([[0.4, 0.6]]), np.log([[0.45, 0.55]])])
    assert vote(sure)[0].argmax() == 1 and average(sure)[0].argmax() == 0
    assert probs(vote(sure)).sum() == pytest.approx(1.0)
    two = class_log_probs([np.log([[0.9, 0.1]]), np.log([[0.4, 0.6]])])  # a 1:1 tie
    assert vote(two)[0].argmax() == average(two)[0].argmax() == 0


def test_equal_weights_are_the_normalised_geometric_mean():
    members = class_log_probs([np.log([[0.8, 0.2]]), np.log([[0.2, 0.8]]), np.log([[0.5, 0.5]])])
    pooled = weighted(members, [1 / 3] * 3, [0.0, 0.0])
    geometric = np.prod(probs(members), axis=0) ** (1 / 3)
    assert probs(pooled) == pytest.approx(geometric / geometric.sum(axis=1, keepdims=True))


def synthetic(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Member 0 informative, member 1 noise, member 2 informative but biased to class 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    signal = np.where(labels == 1, 1.0, -1.0) + rng.normal(0, 1.0, n)
    logits = np.stack(
        [
            np.stack([-signal, signal], 1),
            rng.normal(0, 2, (n, 2)),
            np.stack([-signal, signal + 2.5], 1),
        ]
    )
    return class_log_probs(logits), labels


def test_fitted_weights_reach_the_optimum_and_favour_the_informative_member():
    members, labels = synthetic()
    w, b = fit_weights(members, labels, l2=0.05)
    assert w[1] < w[0] and w[1] < w[2] and (w >= 0).all()
    # Optimality (KKT): zero gradient on positive weights and the biases, non-negative at w = 0.
    loss, gw, gb = _loss_and_grad(members, labels, w, b, 0.05)
    assert np.abs(gb).max() < 1e-4
    assert all(abs(g) < 1e-4 if wi > 0 else g > -1e-4 for wi, g in zip(w, gw, strict=True))
    start, _, _ = _loss_and_grad(members, labels, np.full(3, 1 / 3), np.zeros(2), 0.05)
    assert loss < start
    # The bias counters member 2's preference for class 1.
    assert b[0] > b[1]


def test_stronger_regularisation_stays_closer_to_equal_weights():
    members, labels = synthetic()
    loose, _ = fit_weights(members, labels, l2=0.01)
    tight, _ = fit_weights(members, labels, l2=10.0)
    assert np.abs(tight - 1 / 3).sum() < np.abs(loose - 1 / 3).sum()


def test_cross_validated_predictions_never_see_their_own_labels():
    members, labels = synthetic(n=40)
    out = cross_validated(members, labels, folds=4)
    flipped = labels.copy()
    flipped[np.arange(40) % 4 == 1] ^= 1  # change only fold 1's labels
    again = cross_validated(members, flipped, folds=4)
    fold1 = np.arange(40) % 4 == 1
    assert out[fold1] == pytest.approx(again[fold1])
    assert not np.allclose(out[~fold1], again[~fold1])


def test_contextual_calibration_divides_out_the_content_free_prior():
    lp = np.log(np.array([[0.3, 0.7], [0.6, 0.4]]))
    content_free = np.log(np.array([[0.2, 0.6], [0.1, 0.3]]))  # vocabulary-normalised: [.25,.75]
    p = np.array([[0.3 / 0.25, 0.7 / 0.75], [0.6 / 0.25, 0.4 / 0.75]])
    assert probs(calibrate(lp, content_free)) == pytest.approx(p / p.sum(axis=1, keepdims=True))
    assert calibrate(lp, np.log([[0.5, 0.5]])) == pytest.approx(lp)


def test_ensemble_round_trip_key_and_errors():
    e = Ensemble("weighted", (A, B), (0.6, 0.4), (0.1, -0.1), calibrate=True)
    again = Ensemble.from_dict(json.loads(json.dumps(e.to_dict())))
    assert again == e and again.key == e.key and e.name == "weighted(2) calibrated"
    assert Ensemble("average", (A, B)).key != Ensemble("average", (B, A)).key
    assert Ensemble("average", (A,), calibrate=True).name == "calibrated"
    with pytest.raises(PromptscoutError, match="method 'median'"):
        Ensemble("median", (A, B))
    with pytest.raises(PromptscoutError, match="one weight per member"):
        Ensemble("weighted", (A, B), (1.0,))
    with pytest.raises(PromptscoutError, match="unknown ensemble key"):
        Ensemble.from_dict({"method": "vote", "members": [A.to_dict()], "extra": 1})


# -- intervals ------------------------------------------------------------------------------


def test_wilson_interval_known_values():
    low, high = wilson_interval(0.5, 100)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    low, high = wilson_interval(1.0, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-4)


def test_bootstrap_interval_brackets_the_value_and_shrinks_with_more_examples(tiny_task_dir):
    task = load_task(str(tiny_task_dir))
    rng = np.random.default_rng(0)
    objective = resolve_objective("cross_entropy")
    widths = []
    for repeat in (1, 8):
        examples = list(task.test) * repeat
        outputs = np.log(rng.dirichlet([2, 2], len(examples)))
        data = ObjectiveInput(task, examples, outputs, A)
        low, high = bootstrap_interval(objective, data, resamples=400)
        assert low < objective(data) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


# -- content-free pseudo-split --------------------------------------------------------------


def test_content_free_split_is_scored_by_the_evaluator(tiny_causal, tiny_task_dir):
    task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
    free = task.split(CONTENT_FREE_SPLIT)
    assert [e.fields["text"] for e in free] == ["N/A", "", "[MASK]"]
    prompt = Prompt("Review: {text}\nSentiment:", ("bad", "good"), demos=("train-0",))
    evaluator = LocalEvaluator(tiny_causal, task, [resolve_objective("accuracy")])
    (evaluation,) = evaluator.evaluate([prompt], CONTENT_FREE_SPLIT)
    demo = task.example("train-0")
    texts = [prompt.render(e, [demo]) for e in free]
    assert texts[0].endswith("Review: N/A\nSentiment:") and "Review: " in texts[1]
    expected = tiny_causal.score_labels(texts, ["bad", "good"])
    assert np.asarray(evaluation.outputs) == pytest.approx(np.asarray(expected), abs=1e-5)
    assert task.examples(CONTENT_FREE_SPLIT, ["content-free-2"])[0].fields["text"] == "[MASK]"


# -- campaigns --------------------------------------------------------------------------------

ENSEMBLE_OPTIONS = 'top_k = 3\nensembles = ["average", "vote", "weighted"]\ncalibrate = true'


def ensemble_campaign(write_campaign, options: str = ENSEMBLE_OPTIONS, budget: int = 160):
    path = write_campaign(budget=budget)
    path.write_text(path.read_text().replace("top_k = 2", options))
    return path


def run_campaign(config):
    store = Store(config.store_path)
    campaign = Campaign(config, store, progress=False)
    try:
        return campaign.run(), store, campaign
    finally:
        campaign.close()


def test_campaign_adds_ensemble_rows_from_stored_outputs(write_campaign, tiny_task_dir):
    config = load_config(ensemble_campaign(write_campaign))
    result, store, campaign = run_campaign(config)
    try:
        rows = result.leaderboard
        singles = [e for e in rows if e.kind == "prompt"]
        finalists = [e for e in singles if e.test is not None]
        ensembles = [e for e in rows if e.kind == "ensemble"]
        assert len(finalists) == 3
        # 3 methods, 3 calibrated singles, 3 calibrated methods.
        assert sorted(e.prompt.name for e in ensembles) == sorted(
            ["average(3)", "vote(3)", "weighted(3)"]
            + ["calibrated"] * 3
            + ["average(3) calibrated", "vote(3) calibrated", "weighted(3) calibrated"]
        )
        assert [e.rank for e in rows] == list(range(1, len(rows) + 1))
        # No test scoring beyond the finalists: ensembles pool stored outputs.
        assert sum(1 for _ in store.evaluations("test")) == 3
        assert sum(1 for _ in store.evaluations(CONTENT_FREE_SPLIT)) == 3
        # The average row's test accuracy, recomputed independently from the stored outputs.
        task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
        test_ids = store.get_meta("holdout_examples")
        labels = np.array([task.example(i).label for i in test_ids])
        avg = next(e for e in ensembles if e.prompt.name == "average(3)")
        member_probs = []
        for member in avg.prompt.members:
            out = np.asarray(store.find_evaluation(member.key, "test", test_ids).outputs)
            p = np.exp(out)
            member_probs.append(p / p.sum(axis=1, keepdims=True))
        expected = (np.mean(member_probs, axis=0).argmax(axis=1) == labels).mean()
        assert avg.test["accuracy"] == pytest.approx(expected)
        assert [m.key for m in avg.prompt.members] == [e.prompt.key for e in finalists]
        # Costs and lengths are the members' sums; intervals hold the values.
        assert avg.examples == sum(e.examples for e in finalists) > 0
        assert avg.prompt_tokens == sum(e.prompt_tokens for e in finalists)
        for e in finalists + ensembles:
            low, high = e.test_interval["accuracy"]
            assert low <= e.test["accuracy"] <= high
            low, high = e.test_interval["cross_entropy"]
            assert low <= e.test["cross_entropy"] <= high
        fitted = next(e for e in ensembles if e.prompt.name == "weighted(3)")
        assert len(fitted.prompt.weights) == 3 and len(fitted.prompt.bias) == 2
        # Finalising again (e.g. a resume after the end) gives the same rows.
        before = store.get_meta("ensembles")
        campaign.finalize()
        assert store.get_meta("ensembles") == before
        assert sum(1 for _ in store.evaluations(CONTENT_FREE_SPLIT)) == 3
    finally:
        store.close()


def test_exported_ensemble_is_scored_by_evaluate(
    capsys, write_campaign, tmp_path, tiny_causal_dir, tiny_task_dir
):
    path = ensemble_campaign(write_campaign)
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    store = str(tmp_path / "tiny.db")
    assert main(["leaderboard", store, "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    assert {e["kind"] for e in entries} == {"prompt", "ensemble"}
    export = tmp_path / "all.json"
    assert main(["export", store, "-o", str(export)]) == 0
    exported = json.loads(export.read_text())["entries"]
    for name in ("weighted", "vote"):
        rank, entry = next(
            (i, e)
            for i, e in enumerate(exported, start=1)
            if e["kind"] == "ensemble"
            and e["prompt"]["method"] == name
            and e["prompt"]["calibrate"]  # fmt: skip
        )
        assert len(entry["prompt"]["members"]) == 3
        if name == "weighted":
            assert len(entry["prompt"]["weights"]) == 3
        capsys.readouterr()
        code = main(
            [
                "evaluate",
                "--prompt",
                str(export),
                "--rank",
                str(rank),
                "--model",
                str(tiny_causal_dir),
                "--task",
                str(tiny_task_dir),
                "--json",
                "--quiet",
            ]  # fmt: skip
        )
        result = json.loads(capsys.readouterr().out)
        assert code == 0
        assert result["accuracy"] == pytest.approx(entry["test"]["accuracy"], abs=1e-9)
        assert result["cross_entropy"] == pytest.approx(entry["test"]["cross_entropy"], abs=1e-6)
        assert result["prompt"]["method"] == name


def test_leaderboard_of_a_store_without_ensembles_or_intervals(write_campaign):
    """Stores made before ensembles lack both meta entries: rows read as before, and accuracy
    gets a Wilson interval computed from the value."""
    config = load_config(write_campaign(budget=96))
    _, store, _ = run_campaign(config)
    store.close()
    with sqlite3.connect(config.store_path) as db:
        db.execute("DELETE FROM meta WHERE key IN ('ensembles', 'intervals')")
    with Store(config.store_path, readonly=True) as old:
        assert old.get_meta("ensembles") is None and old.get_meta("intervals") is None
        rows = build_leaderboard(old)
    assert len(rows) == 12 and all(e.kind == "prompt" for e in rows)
    top = rows[0]
    assert top.test_interval["accuracy"] == pytest.approx(
        list(wilson_interval(top.test["accuracy"], 16))
    )
    assert "cross_entropy" not in top.test_interval
    assert rows[-1].test_interval is None and rows[-1].prompt_tokens > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('top_k = 3\nensembles = ["median"]', "unknown method 'median'"),
        ('top_k = 1\nensembles = ["vote"]', "top_k to 2 or more"),
        ('top_k = 2\nensembles = ["vote"]\nensemble_size = 3', "members must be finalists"),
        ("top_k = 2\ncalibrate = 1", "must be bool"),
        ("top_k = 2\nrescore_minutes = 0", "rescore_minutes: must be positive"),
    ],
)
def test_bad_ensemble_options_are_one_line_errors(write_campaign, options, message):
    with pytest.raises(PromptscoutError, match=message) as info:
        load_config(ensemble_campaign(write_campaign, options))
    assert "[leaderboard]" in str(info.value) and "\n" not in str(info.value)
