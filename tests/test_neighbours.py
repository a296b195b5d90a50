"""Nearest-neighbour demonstrations: the prompt field, the neighbours the model's hidden states
choose, scoring through the local evaluator and its cache, and the searchers that propose them."""

from __future__ import annotations

import numpy as np
import pytest

from promptscout.campaign.selection import validation_ids
from promptscout.errors import PromptscoutError
from promptscout.evaluation.cache import EMBED_VARIANT, ScoreCache
from promptscout.evaluation.local import LocalEvaluator
from promptscout.evaluation.neighbours import Neighbours, input_text
from promptscout.evaluation.scoring import render_prompts
from promptscout.leaderboard import describe
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext
from promptscout.searchers.bayesian import BayesianConfig, BayesianSearcher
from promptscout.searchers.manual import ManualConfig, ManualSearcher
from promptscout.searchers.random_search import RandomConfig, RandomSearcher
from promptscout.store import Store
from promptscout.tasks import load_task

OBJECTIVES = [resolve_objective("accuracy")]
TEMPLATE = "Review: {text}\nSentiment:"


@pytest.fixture(scope="module")
def task(tiny_task_dir):
    return load_task(str(tiny_task_dir), label_words=["bad", "good"])


def cosine_nearest(model, task, example, k):
    """Brute force: the k training examples with the highest centred cosine, most similar
    last, never the example itself."""
    train = [e for e in task.train]
    vectors = model.embed([input_text(e) for e in train]).astype(np.float64)
    centre = vectors.mean(axis=0)
    units = (vectors - centre) / np.linalg.norm(vectors - centre, axis=1, keepdims=True)
    query = model.embed([input_text(example)])[0].astype(np.float64) - centre
    similarity = units @ (query / np.linalg.norm(query))
    ranked = sorted(
        (i for i, e in enumerate(train) if e.id != example.id), key=lambda i: -similarity[i]
    )
    return [train[i].id for i in ranked[:k]][::-1]


def test_the_prompt_field(task) -> None:
    plain = Prompt(TEMPLATE, ("bad", "good"))
    nearest = Prompt(TEMPLATE, ("bad", "good"), nearest_demos=2)
    assert nearest.key != plain.key
    assert Prompt(TEMPLATE, ("bad", "good"), nearest_demos=0).key == plain.key  # keys unchanged
    assert Prompt.from_dict(nearest.to_dict()) == nearest
    assert nearest.to_dict()["nearest_demos"] == 2 and "nearest_demos" not in plain.to_dict()
    assert describe(nearest).endswith("+2 nearest demos")
    with pytest.raises(PromptscoutError, match="fixed demos or its nearest training examples"):
        Prompt(TEMPLATE, ("bad", "good"), demos=("train-0",), nearest_demos=1)
    with pytest.raises(PromptscoutError, match="0 or more"):
        Prompt(TEMPLATE, ("bad", "good"), nearest_demos=-1)
    with pytest.raises(PromptscoutError, match="whole number"):
        Prompt.from_dict({"template": TEMPLATE, "nearest_demos": "2"})
    # Every training example is validation evidence: none is a fixed demonstration.
    assert validation_ids(task, nearest) == tuple(e.id for e in task.train)


def test_neighbours_are_the_nearest_by_centred_cosine(tiny_causal, task) -> None:
    neighbours = Neighbours(task, tiny_causal.embed)
    examples = [*task.dev[:4], *task.train[:3]]
    found = neighbours.demos(examples, 3)
    for example, demos in zip(examples, found, strict=True):
        assert [d.id for d in demos] == cosine_nearest(tiny_causal, task, example, 3)
        assert example.id not in {d.id for d in demos}  # a training example never shows itself
    everything = neighbours.demos(task.train[:1], 100)[0]
    assert len(everything) == len(task.train) - 1
    assert neighbours.demos(task.dev[:2], 0) == [[], []]


def test_ties_go_to_the_earlier_training_example(task) -> None:
    # Every text embeds to the same direction but one: all ties but the odd one out.
    odd = input_text(task.train[2])

    def embed(texts):
        return np.array([[5.0, 1.0] if t == odd else [1.0, 0.0] for t in texts])

    (demos,) = Neighbours(task, embed).demos(task.dev[:1], 2)
    # Centred, the odd example points away from the crowd; the crowd ties, the first two win.
    assert [d.id for d in demos] == [task.train[1].id, task.train[0].id]


def test_scoring_renders_each_input_with_its_neighbours(tiny_causal, task, tmp_path) -> None:
    prompt = Prompt(TEMPLATE, ("bad", "good"), nearest_demos=2)
    with Store(tmp_path / "s.db") as store:
        evaluator = LocalEvaluator(tiny_causal, task, OBJECTIVES, cache=ScoreCache(store))
        (result,) = evaluator.evaluate([prompt], "dev")
        assert result.ok and result.examples == len(task.dev)
        texts = []
        for example in task.dev:
            demos = [task.example(i) for i in cosine_nearest(tiny_causal, task, example, 2)]
            texts.append(prompt.render(example, demos))
        expected = tiny_causal.score_labels(texts, prompt.label_words)
        assert np.allclose(result.outputs, expected, atol=1e-5)
        inputs = [input_text(e) for e in (*task.train, *task.dev)]
        cached = ScoreCache(store).get(tiny_causal.fingerprint, EMBED_VARIANT, inputs)
        assert all(v is not None for v in cached)  # embeddings are kept with the scores
        # A new evaluator on the same store embeds nothing and reads nothing again.
        before = tiny_causal.tokens_forwarded
        again = LocalEvaluator(tiny_causal, task, OBJECTIVES, cache=ScoreCache(store))
        (second,) = again.evaluate([prompt], "dev")
        assert second.examples == 0 and second.outputs == result.outputs
        assert tiny_causal.tokens_forwarded == before
        # Its own text's length counts its demonstrations (the first training examples).
        assert evaluator.prompt_tokens(prompt) > evaluator.prompt_tokens(
            Prompt(TEMPLATE, ("bad", "good"))
        )


def test_readouts_read_training_inputs_shown_their_other_neighbours(tiny_causal, task) -> None:
    prompt = Prompt(TEMPLATE, ("bad", "good"), nearest_demos=2, verbalizer="linear")
    (result,) = LocalEvaluator(tiny_causal, task, OBJECTIVES).evaluate([prompt], "train")
    assert result.ok and len(result.outputs) == len(task.train)


def test_without_neighbours_the_prompt_fails_alone(task) -> None:
    # What an evaluator without the model's hidden states (Ray's driver) does.
    prompts = [
        Prompt(TEMPLATE, ("bad", "good"), nearest_demos=1),
        Prompt(TEMPLATE, ("bad", "good")),
    ]
    rendered, failed = render_prompts(task, prompts, "dev", task.dev)
    assert [r.prompt for r in rendered] == prompts[1:]
    (failure,) = failed
    assert "local evaluator and an in-process model" in failure.error


def test_searchers_propose_nearest_demos(tiny_causal, task) -> None:
    context = SearchContext(task, ("bad", "good"), 0, model_provider=lambda: tiny_causal)
    manual = ManualSearcher(ManualConfig(templates=[TEMPLATE], nearest_demos=[0, 2]), context)
    assert [p.nearest_demos for p in manual.ask(10)] == [0, 2]
    assert ManualConfig(templates=[TEMPLATE], nearest_demos=[0, 2]).reads_internals()
    bayesian = BayesianSearcher(BayesianConfig(nearest_demos=3, n_startup_trials=30), context)
    asked = bayesian.ask(30)
    shown = {p.nearest_demos for p in asked}
    assert shown == {0, 3}
    assert all(not (p.nearest_demos and p.demos) for p in asked)
    assert any(p.demos for p in asked)  # fixed demonstrations stay in the space
    sampler = RandomSearcher(RandomConfig(nearest_demos=1, max_demos=1), context)
    assert {p.nearest_demos for p in sampler.ask(20)} == {0, 1}
    with pytest.raises(Exception, match="nearest_demos"):
        BayesianConfig(nearest_demos=-1)
