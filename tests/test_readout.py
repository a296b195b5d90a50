"""Readouts: calibration per candidate and the learned (linear) verbalizer, on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from promptscout.errors import PromptscoutError
from promptscout.evaluation.cache import ScoreCache
from promptscout.evaluation.local import LocalEvaluator
from promptscout.evaluation.readout import fit_linear_head, linear_scores, reference_examples
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.store import Store
from promptscout.tasks import load_task

OBJECTIVES = [resolve_objective("accuracy"), resolve_objective("cross_entropy")]
TEMPLATE = "Review: {text}\nSentiment:"


@pytest.fixture(scope="module")
def task(tiny_task_dir):
    return load_task(str(tiny_task_dir), label_words=["bad", "good"])


def log_normalize(scores):
    return scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)


def texts(task, prompt, examples):
    demos = [task.example(i) for i in prompt.demos]
    return [prompt.render(e, demos) for e in examples]


@pytest.mark.parametrize("calibration", ["contextual", "domain", "batch"])
def test_calibration_removes_the_prior_the_prompt_imposes(tiny_causal, task, calibration):
    prompt = Prompt(TEMPLATE, ("bad", "good"), demos=("train-1",), calibration=calibration)
    (result,) = LocalEvaluator(tiny_causal, task, OBJECTIVES).evaluate([prompt], "dev")
    scores = tiny_causal.score_labels(texts(task, prompt, task.dev), prompt.label_words)
    refs = tiny_causal.score_labels(
        texts(task, prompt, reference_examples(task, prompt)), prompt.label_words
    )
    if calibration == "contextual":  # the mean distribution over N/A, "" and [MASK]
        assert len(refs) == 3
        prior = np.log(np.exp(log_normalize(refs)).mean(axis=0))
    else:  # domain: the empty input alone; batch: every training input (labels unused)
        assert len(refs) == (1 if calibration == "domain" else len(task.train))
        prior = log_normalize(refs).mean(axis=0)
    expected = log_normalize(scores) - prior
    assert np.allclose(result.outputs, expected, atol=1e-5)
    gold = np.array([e.label for e in task.dev])
    assert result.objectives["accuracy"] == pytest.approx(
        float((expected.argmax(1) == gold).mean())
    )
    assert result.example_ids == tuple(e.id for e in task.dev)
    # The model read the references too, once: a second evaluation reads nothing new.
    assert result.examples == len(task.dev) + len(refs)


def test_linear_verbalizer_is_fitted_on_train_and_cached(tiny_causal, task, tmp_path):
    prompt = Prompt(TEMPLATE, ("bad", "good"), verbalizer="linear")
    with Store(tmp_path / "s.db") as store:
        evaluator = LocalEvaluator(tiny_causal, task, OBJECTIVES, cache=ScoreCache(store))
        (first,) = evaluator.evaluate([prompt], "dev")
        assert first.ok and first.examples == len(task.dev) + len(task.train)
        (again,) = evaluator.evaluate([prompt], "dev")
    assert again.examples == 0 and again.outputs == first.outputs  # cache and refit agree
    train = texts(task, prompt, task.train)
    head = fit_linear_head(
        tiny_causal.score_labels(train, prompt.label_words),
        tiny_causal.hidden_states(train),
        np.array([e.label for e in task.train]),
    )
    dev = texts(task, prompt, task.dev)
    expected = linear_scores(
        head, tiny_causal.score_labels(dev, prompt.label_words), tiny_causal.hidden_states(dev)
    )
    assert np.allclose(first.outputs, expected, atol=1e-4)
    assert np.allclose(np.exp(expected).sum(axis=1), 1.0)  # class log-probabilities


def test_linear_head_learns_what_the_label_words_miss():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 20)
    hidden = rng.normal(size=(40, 6))
    hidden[:, 2] += 3.0 * (2 * labels - 1)  # one direction separates the classes
    scores = np.log(np.full((40, 2), 0.5))  # label words that say nothing
    head = fit_linear_head(scores, hidden, labels)
    assert (linear_scores(head, scores, hidden).argmax(1) == labels).mean() == 1.0
    # A huge penalty leaves the label words (plus a bias): no hidden direction is used.
    flat = fit_linear_head(scores, hidden, labels, penalty=1e6)
    assert np.abs(flat["W"]).max() < 1e-3


def test_readout_options_are_checked(task, tiny_causal):
    with pytest.raises(PromptscoutError, match="calibration must be one of"):
        Prompt(TEMPLATE, ("bad", "good"), calibration="platt")
    with pytest.raises(PromptscoutError, match="verbalizer must be one of"):
        Prompt(TEMPLATE, ("bad", "good"), verbalizer="mlp")
    with pytest.raises(PromptscoutError, match="leave calibration empty"):
        Prompt(TEMPLATE, ("bad", "good"), calibration="batch", verbalizer="linear")
    # Keys: prompts without readouts keep theirs; each readout is its own candidate.
    plain = Prompt(TEMPLATE, ("bad", "good"))
    keys = {plain.key, Prompt(TEMPLATE, ("bad", "good"), calibration="batch").key}
    keys.add(Prompt(TEMPLATE, ("bad", "good"), verbalizer="linear").key)
    assert len(keys) == 3 and "calibration" not in plain.to_dict()


def test_a_training_example_is_scored_by_a_head_not_fitted_on_it(tiny_causal, task):
    from promptscout.evaluation.readout import _train_folds

    prompt = Prompt(TEMPLATE, ("bad", "good"), verbalizer="linear")
    (result,) = LocalEvaluator(tiny_causal, task, OBJECTIVES).evaluate([prompt], "train")
    train = texts(task, prompt, task.train)
    scores = tiny_causal.score_labels(train, prompt.label_words)
    hidden = tiny_causal.hidden_states(train)
    labels = np.array([e.label for e in task.train])
    fold_of = _train_folds(task)
    folds = np.array([fold_of[e.id] for e in task.train])
    assert len(set(folds)) > 1
    for fold in set(folds):  # out of fold: fitted on the other folds only
        rows = folds == fold
        head = fit_linear_head(scores[~rows], hidden[~rows], labels[~rows])
        expected = linear_scores(head, scores[rows], hidden[rows])
        assert np.allclose(np.array(result.outputs)[rows], expected, atol=1e-4)
