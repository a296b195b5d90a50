from __future__ import annotations

import math
import sys
import textwrap

import numpy as np
import pytest

from promptscout.errors import PromptscoutError
from promptscout.objectives import (
    MINIMIZE,
    OBJECTIVES,
    ObjectiveInput,
    Ranking,
    resolve_objective,
)
from promptscout.prompts import Prompt
from promptscout.tasks import Example, Task


def make_task(kind: str = "classification") -> Task:
    if kind == "generation":
        examples = (Example("dev-0", {"text": "q"}, "Paris"), Example("dev-1", {"text": "q"}, "4"))
        return Task("gen", "generation", (), (), ("text",), (), examples, ())
    examples = tuple(
        Example(f"dev-{i}", {"text": str(i)}, label) for i, label in enumerate([0, 0, 1, 1, 2])
    )
    return Task(
        "t3", "classification", ("a", "b", "c"), ("a", "b", "c"), ("text",), (), examples, ()
    )


def data(outputs, kind="classification", tokens=0) -> ObjectiveInput:
    task = make_task(kind)
    words = () if kind == "generation" else ("a", "b", "c")
    return ObjectiveInput(task, task.dev, outputs, Prompt("{text}", words), tokens)


LOGPROBS = np.log(
    np.array(
        [
            [0.7, 0.2, 0.1],  # gold 0, predicted 0
            [0.2, 0.7, 0.1],  # gold 0, predicted 1
            [0.1, 0.8, 0.1],  # gold 1, predicted 1
            [0.1, 0.8, 0.1],  # gold 1, predicted 1
            [0.6, 0.2, 0.2],  # gold 2, predicted 0
        ]
    )
    * 0.5
)  # vocabulary-normalised scores leave mass to other tokens; objectives renormalise


def test_accuracy_and_macro_f1():
    assert OBJECTIVES["accuracy"](data(LOGPROBS)) == pytest.approx(3 / 5)
    # class 0: p=1/2 r=1/2 f=1/2; class 1: p=2/3 r=1 f=0.8; class 2: f=0
    assert OBJECTIVES["macro_f1"](data(LOGPROBS)) == pytest.approx((0.5 + 0.8 + 0) / 3)


def test_cross_entropy_is_mean_gold_nll_over_classes():
    p = np.exp(LOGPROBS) / np.exp(LOGPROBS).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(5), [0, 0, 1, 1, 2]]))
    assert OBJECTIVES["cross_entropy"](data(LOGPROBS)) == pytest.approx(expected)
    assert OBJECTIVES["cross_entropy"].direction == MINIMIZE


def test_exact_match_and_length():
    assert OBJECTIVES["exact_match"](data([" paris ", "5"], "generation")) == 0.5
    assert OBJECTIVES["prompt_length"](data(LOGPROBS, tokens=7)) == 7.0


def test_ranking_weights_and_directions():
    ranking = Ranking((("accuracy", "maximize"), ("prompt_length", "minimize")), (1.0, 0.01))
    assert ranking.score({"accuracy": 0.8, "prompt_length": 10}) == pytest.approx(0.7)
    assert Ranking((("cross_entropy", "minimize"),)).score({"cross_entropy": 0.3}) == -0.3
    assert ranking.score({"accuracy": 0.8}) == -math.inf
    assert Ranking.from_dict(ranking.to_dict()) == ranking


def test_plugin_objective_by_module_function(tmp_path, monkeypatch):
    (tmp_path / "my_metrics.py").write_text(
        textwrap.dedent("""
        def first_class_rate(data):
            return float((data.outputs.argmax(axis=1) == 0).mean())
        first_class_rate.direction = "minimize"
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    objective = resolve_objective("my_metrics:first_class_rate")
    assert objective.direction == MINIMIZE
    assert objective(data(LOGPROBS)) == pytest.approx(2 / 5)
    sys.modules.pop("my_metrics", None)


def test_unknown_and_broken_objectives():
    with pytest.raises(PromptscoutError, match="unknown objective 'acc'.*accuracy"):
        resolve_objective("acc")
    with pytest.raises(PromptscoutError, match="cannot import module 'no_such_module_xyz'"):
        resolve_objective("no_such_module_xyz:f")
    with pytest.raises(PromptscoutError, match="has no 'nope'"):
        resolve_objective("math:nope")
