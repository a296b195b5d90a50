from __future__ import annotations

import numpy as np
import pytest

from promptscout.evaluation.local import LocalEvaluator
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.tasks import Example, Task, load_task

OBJECTIVES = [resolve_objective("accuracy"), resolve_objective("cross_entropy")]


@pytest.fixture(scope="module")
def task(tiny_task_dir):
    return load_task(str(tiny_task_dir), label_words=["bad", "good"])


def test_scores_equal_the_model_and_results_keep_prompt_order(tiny_causal, task):
    prompts = [
        Prompt("{text} It was", ("bad", "good")),
        Prompt("Review: {text}\nSentiment:", ("negative", "positive")),
        Prompt("{text} It was", ("bad", "good"), demos=("train-0", "train-3")),
    ]
    evaluator = LocalEvaluator(tiny_causal, task, OBJECTIVES, texts_per_call=5)
    seen = []
    results = evaluator.evaluate(prompts, "dev", progress=seen.append)
    assert [r.prompt_key for r in results] == [p.key for p in prompts]
    assert sum(seen) == 3 * len(task.dev)  # progress counts every scored example
    for prompt, result in zip(prompts, results, strict=True):
        demos = [task.example(i) for i in prompt.demos]
        texts = [prompt.render(e, demos) for e in task.dev]
        expected = tiny_causal.score_labels(texts, prompt.label_words)
        assert np.allclose(result.outputs, expected, atol=1e-5)
        assert result.examples == len(task.dev) and result.tokens > 0 and result.seconds > 0
        gold = np.array([e.label for e in task.dev])
        assert result.objectives["accuracy"] == pytest.approx(
            float((expected.argmax(1) == gold).mean())
        )


def test_a_broken_prompt_fails_alone(tiny_causal, task):
    good = Prompt("{text} It was", ("bad", "good"))
    unknown_demo = Prompt("{text} It was", ("bad", "good"), demos=("train-999",))
    wrong_field = Prompt("{question} It was", ("bad", "good"))
    results = LocalEvaluator(tiny_causal, task, OBJECTIVES).evaluate(
        [unknown_demo, good, wrong_field], "dev"
    )
    assert [r.ok for r in results] == [False, True, False]
    assert "cannot render" in results[0].error and "{question}" in results[2].error


def test_prompt_tokens_count_the_frame_and_demos(tiny_causal, task):
    evaluator = LocalEvaluator(tiny_causal, task, OBJECTIVES)
    short = Prompt("{text}", ("bad", "good"))
    longer = Prompt("Review: {text} It was", ("bad", "good"), demos=("train-0",))
    assert evaluator.prompt_tokens(longer) > evaluator.prompt_tokens(short)


def test_generation_tasks_are_scored_by_exact_match(tiny_causal):
    examples = tuple(Example(f"dev-{i}", {"text": t}, "good") for i, t in enumerate(["a", "b"]))
    task = Task("gen", "generation", (), (), ("text",), (), examples, ())
    evaluator = LocalEvaluator(
        tiny_causal, task, [resolve_objective("exact_match")], max_new_tokens=3
    )
    (result,) = evaluator.evaluate([Prompt("Q: {text}\nA:")], "dev")
    generated = tiny_causal.generate(["Q: a\nA:", "Q: b\nA:"], 3)
    assert result.outputs == generated
    expected = sum(g.strip().lower() == "good" for g in generated) / 2
    assert result.objectives == {"exact_match": expected}
