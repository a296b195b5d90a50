"""One suite every registered searcher runs, plus each searcher's own behaviour."""

from __future__ import annotations

import json

import pytest
from campaign_fixtures import outcomes

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.prompts import Prompt
from promptscout.searchers import SEARCHERS, SearchContext, create_searcher
from promptscout.tasks import load_task

# Options each searcher needs beyond its defaults to run on sst-2.
OPTIONS = {
    "manual": {
        "templates": ["Review: {text}\nSentiment:", "{text} It was", "{text} Overall:"],
        "label_word_sets": [["negative", "positive"], ["bad", "good"]],
    },
    "random": {"max_demos": 2},
    "bayesian": {
        "templates": ["Review: {text}\nSentiment:", "{text} It was"],
        "label_word_candidates": [["negative", "bad"], ["positive", "good"]],
        "max_demos": 2,
    },
    "evolutionary": {
        "label_word_candidates": [["negative", "bad"], ["positive", "good"]],
        "population_size": 4,
        "max_triggers": 1,
    },
    "soft": {"vectors": 4, "patience": 3},
    "peft": {"method": "lora", "rank": 2, "patience": 3},
    "autoprompt": {"iterations": 30, "candidates": 4, "grad_batch": 4, "eval_examples": 4},
    "rl": {"steps": 8, "train_examples": 4, "greedy_every": 3},
    # Writers write with the tiny model (junk, mostly dropped): the starting pool carries them.
    **{
        writer: {"instructions": ["", "Classify the review.", "Is it good?"], "rounds": 2,
                 "writes_per_round": 2, "max_new_tokens": 12}
        for writer in ("ape", "opro", "reflect")
    },
}  # fmt: skip

# White-box searchers (gradients, soft prompts) read the tiny random causal model.
MODEL: list = []


@pytest.fixture(autouse=True)
def white_box_model(request):
    MODEL[:] = [request.getfixturevalue("tiny_causal")]


def fake_evaluation(prompt: Prompt) -> Evaluation:
    """A deterministic stand-in score (a function of the prompt text) to drive learning."""
    score = (sum(map(ord, prompt.template + "".join(prompt.label_words))) % 97) / 97
    return Evaluation(prompt.key, "dev", ("dev-0",), [[0.0, 0.0]], {"accuracy": score}, 1)


def make(type_name: str, seed: int = 0, **extra):
    task = load_task("sst-2")
    context = SearchContext(task, task.label_words, seed, model_provider=lambda: MODEL[0])
    return create_searcher(type_name, {**OPTIONS.get(type_name, {}), **extra}, context)


def drive(searcher, rounds: int, n: int = 3) -> list[str]:
    keys = []
    for _ in range(rounds):
        prompts = searcher.ask(n)
        keys += [p.key for p in prompts]
        searcher.tell(outcomes(searcher, [(p, fake_evaluation(p)) for p in prompts]))
    return keys


def test_every_registered_searcher_is_covered():
    assert set(SEARCHERS) <= set(OPTIONS) | {"manual", "random"}


@pytest.mark.parametrize("type_name", sorted(SEARCHERS))
def test_asks_valid_prompts_for_the_task(type_name):
    searcher = make(type_name)
    prompts = searcher.ask(4)
    assert 0 < len(prompts) <= 4
    task = searcher.context.task
    for prompt in prompts:
        prompt.check_task(task)
        for demo in prompt.demos:
            assert task.example(demo) in task.train  # demonstrations never come from dev/test


@pytest.mark.parametrize("type_name", sorted(SEARCHERS))
def test_deterministic_given_seed(type_name):
    assert drive(make(type_name, seed=3), 3) == drive(make(type_name, seed=3), 3)


@pytest.mark.parametrize("type_name", sorted(SEARCHERS))
def test_state_round_trip_resumes_exactly(type_name):
    straight = make(type_name, seed=1)
    expected = drive(straight, 4)

    first = make(type_name, seed=1)
    keys = drive(first, 2)
    state = json.loads(json.dumps(first.state()))  # the store keeps JSON
    second = make(type_name, seed=1)
    second.load_state(state)
    keys += drive(second, 2)
    assert keys == expected


@pytest.mark.parametrize("type_name", sorted(SEARCHERS))
def test_never_asks_the_same_prompt_twice(type_name):
    keys = drive(make(type_name), 5)
    assert len(keys) == len(set(keys))


def test_manual_enumerates_every_combination_then_is_exhausted():
    searcher = make("manual")
    prompts = searcher.ask(100)
    assert len(prompts) == 6 and searcher.exhausted and searcher.ask(5) == []
    assert {p.label_words for p in prompts} == {("negative", "positive"), ("bad", "good")}


def test_manual_uses_campaign_label_words_by_default():
    task = load_task("sst-2")
    context = SearchContext(task, ("terrible", "great"), 0)
    searcher = create_searcher("manual", {"templates": ["{text} It was"]}, context)
    assert searcher.ask(1)[0].label_words == ("terrible", "great")


def test_manual_rejects_bad_templates():
    with pytest.raises(PromptscoutError, match="no input field"):
        make("manual", templates=["Sentiment:"])
    with pytest.raises(PromptscoutError, match="not an input field"):
        make("manual", templates=["{sentence} It was"])
    with pytest.raises(PromptscoutError, match="needs 'templates'"):
        make("manual", templates=[])


def test_random_samples_from_the_declared_space():
    searcher = make(
        "random",
        cues=["It was"],
        field_labels=["Review"],
        separators=["\n"],
        label_word_candidates=[["bad", "awful"], ["good", "fine"]],
        max_demos=3,
    )
    prompts = searcher.ask(30)
    assert {p.template for p in prompts} == {"Review: {text}\nIt was"}
    assert {p.label_words[0] for p in prompts} <= {"bad", "awful"}
    assert max(len(p.demos) for p in prompts) <= 3 and any(p.demos for p in prompts)


def test_random_reports_exhaustion_of_a_tiny_space():
    searcher = make(
        "random",
        cues=["It was"],
        field_labels=[""],
        separators=["\n"],
        instructions=[""],
        max_demos=0,
        max_tries=20,
    )
    assert len(searcher.ask(5)) == 1 and searcher.exhausted


def test_unknown_searcher_and_option():
    with pytest.raises(PromptscoutError, match="unknown searcher type 'genetic'.*manual"):
        make("genetic")
    with pytest.raises(PromptscoutError, match="no option 'temperature'"):
        make("random", temperature=1.0)
