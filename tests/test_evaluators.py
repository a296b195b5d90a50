"""The evaluator contract, once for every evaluator: the same prompts give the same results.

The reference is the local evaluator scoring each prompt alone; every evaluator in
:data:`EVALUATORS`, given all the prompts at once, must agree with it (outputs to float rounding,
objectives, example ids, examples read, prompt tokens, errors), return :meth:`evaluate`'s
results in prompt order, yield each prompt once from ``iter_evaluate``, let a prompt that cannot
be scored fail alone, and read nothing when a score cache already holds the outputs.

To check a new evaluator, add one entry to :data:`EVALUATORS`: a builder from the shared
:class:`Setup` (tiny model, tiny task, soft-prompt resolver) and an optional score cache. Mark
it ``slow`` if it starts processes. Ray starts once for this module (2 CPUs, no dashboard), as
in test_ray.py, and only if a Ray case runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from promptscout.evaluation.base import Evaluation, Evaluator
from promptscout.evaluation.cache import ScoreCache
from promptscout.evaluation.local import LocalEvaluator
from promptscout.evaluation.readout import reference_examples
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.soft_tensors import tensors_digest
from promptscout.store import Store
from promptscout.tasks import load_task

OBJECTIVES = [resolve_objective("accuracy"), resolve_objective("cross_entropy")]
# Learned vectors before the text (the tiny model's hidden size is 32).
SOFT = {"prefix": np.random.default_rng(0).normal(0, 0.1, (3, 32)).astype(np.float32)}
PROMPTS = [
    Prompt("Review: {text}\nSentiment:", ("bad", "good")),  # zero-shot
    Prompt("{text} It was", ("bad", "good"), instruction="Classify the review."),
    Prompt("{text} It was", ("terrible", "great"), demos=("train-0", "train-3")),
    Prompt("Text: {text} Answer:", ("negative", "positive"), demos=("train-2",)),
    Prompt("Review: {text}\nSentiment:", ("bad", "good"), soft=tensors_digest(SOFT)),
    Prompt("{missing} x", ("bad", "good")),  # cannot render: fails alone
    Prompt("{text}", ("bad", "good"), soft="ab" * 16),  # tensors nobody has: fails alone
    # Readouts: calibrated on content-free inputs or on the training inputs; a linear verbalizer
    # fitted on the training examples (references scored with the prompt, then read out).
    Prompt("{text} It was", ("bad", "good"), demos=("train-1",), calibration="contextual"),
    Prompt("Review: {text}\nSentiment:", ("bad", "good"), calibration="batch"),
    Prompt("Review: {text}\nSentiment:", ("bad", "good"), verbalizer="linear"),
]
FAILING = {PROMPTS[5].key: "cannot render", PROMPTS[6].key: "not available"}
# Search-split examples in an order of our choosing (results keep it).
DEV_IDS = ("dev-5", "dev-0", "dev-7", "dev-2")


@dataclass(frozen=True)
class Setup:
    """What every evaluator is built from."""

    model_dir: Path
    model: object  # the tiny causal LanguageModel, loaded in this process
    task: object

    @staticmethod
    def resolver(digest: str):
        return {tensors_digest(SOFT): SOFT}.get(digest)


# Ray instances the builders started (stopped once the module's evaluators are closed).
STARTED: list = []


def local(setup: Setup, cache: ScoreCache | None) -> Evaluator:
    return LocalEvaluator(
        setup.model, setup.task, OBJECTIVES, cache=cache, soft_resolver=setup.resolver
    )


def on_ray(setup: Setup, cache: ScoreCache | None) -> Evaluator:
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():  # once for the module, as in test_ray.py; `built` stops it
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=128 * 1024**2)  # fmt: skip
        STARTED.append(ray)
    from promptscout.evaluation.ray_evaluator import RayEvaluator

    # chunk_size 3: each prompt's examples are split over both actors, in several units.
    return RayEvaluator(
        str(setup.model_dir), setup.task, OBJECTIVES, workers=2, chunk_size=3, cache=cache,
        soft_resolver=setup.resolver,
    )  # fmt: skip


# One entry per evaluator kind: its builder, and marks.
EVALUATORS = [
    pytest.param(local, id="local"),
    pytest.param(on_ray, id="ray", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def setup(tiny_causal_dir, tiny_causal, tiny_task_dir) -> Setup:
    task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
    return Setup(tiny_causal_dir, tiny_causal, task)


@pytest.fixture(scope="module")
def built(setup):
    """``built(builder, cache=None)``: the builder's evaluator, kept for the module's next
    tests; one of a kind at a time (Ray has CPUs for one evaluator's actors)."""
    evaluators: dict = {}

    def get(builder, cache: ScoreCache | None = None) -> Evaluator:
        if builder in evaluators and evaluators[builder][0] is not cache:
            evaluators.pop(builder)[1].close()
        if builder not in evaluators:
            evaluators[builder] = (cache, builder(setup, cache))
        return evaluators[builder][1]

    yield get
    for _, evaluator in evaluators.values():
        evaluator.close()
    while STARTED:  # after the evaluators using it are closed
        STARTED.pop().shutdown()


@pytest.fixture(scope="module")
def reference(setup):
    """``reference(split, ids)``: the local evaluator's results, each prompt scored alone."""
    evaluator = local(setup, None)
    return lambda split, ids=None: [evaluator.evaluate([p], split, ids)[0] for p in PROMPTS]


def same(ours: list[Evaluation], theirs: list[Evaluation], *, examples_read: bool = True):
    """Equal results: prompts, example ids, outputs (to float rounding), objectives, examples
    read (unless ``examples_read`` is False), prompt tokens, errors."""
    assert [e.prompt_key for e in ours] == [e.prompt_key for e in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert (a.split, a.example_ids, a.error, a.prompt_tokens) == (
            b.split,
            b.example_ids,
            b.error,
            b.prompt_tokens,
        ), a.prompt_key
        if examples_read:
            assert a.examples == b.examples, a.prompt_key
        assert np.array(a.outputs).shape == np.array(b.outputs).shape
        np.testing.assert_allclose(np.array(a.outputs), np.array(b.outputs), rtol=1e-5, atol=1e-6)
        assert a.objectives.keys() == b.objectives.keys()
        for name in a.objectives:
            assert a.objectives[name] == pytest.approx(b.objectives[name], rel=1e-5, abs=1e-6)


def check_failures(results: list[Evaluation], task) -> None:
    """The unscorable prompts failed alone, with the reason; every other prompt is scored, its
    examples read once, and its readout's references too (uncached)."""
    by_key = {p.key: p for p in PROMPTS}
    for evaluation in results:
        if evaluation.prompt_key in FAILING:
            assert evaluation.error and FAILING[evaluation.prompt_key] in evaluation.error
            assert not evaluation.objectives and evaluation.examples == 0
        else:
            references = reference_examples(task, by_key[evaluation.prompt_key])
            assert evaluation.ok
            assert evaluation.examples == len(evaluation.example_ids) + len(references)
            assert set(evaluation.objectives) == {"accuracy", "cross_entropy"}


@pytest.mark.parametrize("builder", EVALUATORS)
def test_scores_like_the_reference_in_prompt_order(builder, built, reference, setup):
    evaluator = built(builder)
    assert evaluator.fingerprint == setup.model.fingerprint
    assert evaluator.parallelism >= 1

    results = evaluator.evaluate(PROMPTS, "test")  # the whole split
    assert [e.prompt_key for e in results] == [p.key for p in PROMPTS]
    assert all(e.example_ids == tuple(x.id for x in setup.task.test) for e in results)
    check_failures(results, setup.task)
    same(results, reference("test"))

    chosen = evaluator.evaluate(PROMPTS[::-1], "dev", DEV_IDS)  # some examples, in that order
    assert [e.prompt_key for e in chosen] == [p.key for p in PROMPTS[::-1]]
    assert all(e.example_ids == DEV_IDS for e in chosen)
    same(chosen, reference("dev", DEV_IDS)[::-1])


@pytest.mark.parametrize("builder", EVALUATORS)
def test_iter_evaluate_yields_each_prompt_once(builder, built, setup):
    evaluator = built(builder)
    seen: list[int] = []
    results = list(evaluator.iter_evaluate(PROMPTS, "dev", progress=seen.append))
    assert Counter(e.prompt_key for e in results) == Counter(p.key for p in PROMPTS)
    check_failures(results, setup.task)
    assert sum(seen) >= (len(PROMPTS) - len(FAILING)) * len(setup.task.dev)


@pytest.mark.parametrize("builder", EVALUATORS)
def test_progress_counts_the_examples_scored(builder, built, setup):
    seen: list[int] = []
    list(built(builder).iter_evaluate(PROMPTS, "dev", progress=seen.append))
    # Every example of every scorable prompt, once; nothing for the prompts that failed.
    assert sum(seen) == (len(PROMPTS) - len(FAILING)) * len(setup.task.dev)


@pytest.mark.parametrize("builder", EVALUATORS)
def test_a_score_cache_makes_the_second_call_read_nothing(
    builder, built, reference, setup, tmp_path, request
):
    store = Store(tmp_path / "cache.db")
    request.addfinalizer(store.close)
    evaluator = built(builder, ScoreCache(store))
    first = evaluator.evaluate(PROMPTS, "test")
    alone = reference("test")
    same(first, alone, examples_read=False)
    # A text two prompts share is read once: here a calibration reference (a training input
    # rendered with the prompt) that another prompt scored as a test example.
    by_key = {p.key: p for p in PROMPTS}
    for ours, theirs in zip(first, alone, strict=True):
        if reference_examples(setup.task, by_key[ours.prompt_key]):
            assert ours.examples <= theirs.examples
        else:
            assert ours.examples == theirs.examples
    again = evaluator.evaluate(PROMPTS, "test")
    same(again, reference("test"), examples_read=False)
    assert [(e.examples, e.tokens) for e in again] == [(0, 0)] * len(PROMPTS)
    # Other examples of the same texts, in another order: read from the cache too.
    part = evaluator.evaluate(PROMPTS, "test", ["test-3", "test-1"])
    assert all(e.examples == 0 and e.example_ids == ("test-3", "test-1") for e in part)
    same(part, reference("test", ["test-3", "test-1"]), examples_read=False)
