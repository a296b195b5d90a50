"""The evolutionary searcher: operators keep genomes valid, GA and DE climb a planted objective,
racing-stopped candidates rank low, LM operators clean or fall back, determinism, and a killed
campaign resuming to the same population (the shared suite is in test_searchers.py)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from campaign_fixtures import (
    outcomes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from promptscout.config import load_config
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.objectives import MINIMIZE, Ranking
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, create_searcher
from promptscout.searchers.evolutionary.genome import (
    DEMOS,
    INSTRUCTION,
    TOKENS,
    WORDS,
    RandomStream,
    from_json,
    make_individual,
    to_json,
)
from promptscout.searchers.evolutionary.lm_operators import clean
from promptscout.tasks import load_task

TASK = load_task("sst-2")
DEV = tuple(e.id for e in TASK.dev)
WORDS_POOL = [["negative", "bad", "terrible", "awful"], ["positive", "good", "great", "fine"]]
SPACE = {
    "instructions": ["", "Classify the text.", "Read it. Answer with one word."],
    "phrases": ["Judge the review.", "Be brief.", "Think."],
    "field_labels": ["", "Review", "Text"],
    "cues": ["It was", "Answer:", "Sentiment:"],
    "separators": ["\n", " "],
    "label_word_candidates": WORDS_POOL,
    "max_demos": 2,
    "demo_pool": 32,  # every training example
    "max_triggers": 2,
}


def context(seed: int = 0, **kwargs) -> SearchContext:
    return SearchContext(TASK, TASK.label_words, seed, **kwargs)


def make(seed: int = 0, ctx: SearchContext | None = None, **options):
    return create_searcher("evolutionary", {**SPACE, **options}, ctx or context(seed))


def evaluation(prompt: Prompt, score: float, ids=DEV) -> Evaluation:
    return Evaluation(prompt.key, "dev", tuple(ids), [], {"accuracy": score}, len(ids))


def planted(prompt: Prompt) -> float:
    """Credit for one phrase that no initial instruction has, two label words, a cue, and two
    demonstrations (a smooth-ish landscape with one optimum worth 1.0)."""
    demos = TASK.train[3].id, TASK.train[20].id
    return (
        0.3 * ("Judge the review." in prompt.instruction)
        + 0.15 * (prompt.label_words[0] == "awful")
        + 0.15 * (prompt.label_words[1] == "fine")
        + 0.1 * prompt.template.endswith("Sentiment:")
        + 0.15 * sum(d in prompt.demos for d in demos)
        - 0.05 * len(prompt.triggers)
    )


def evolve(searcher, generations: int) -> list[float]:
    """Best planted score of each generation (generation 0 first)."""
    best = []
    size = searcher.config.population_size
    for _ in range(generations):
        prompts = searcher.ask(size)
        searcher.tell(outcomes(searcher, [(p, evaluation(p, planted(p))) for p in prompts]))
        best.append(max(planted(p) for p in prompts))
    return best


# -- operators ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), edits=st.integers(1, 30), crossover=st.booleans())
def test_operators_always_make_valid_prompts(seed, edits, crossover):
    searcher = make(seed, crossover="one_point" if crossover else "uniform")
    space, variation = searcher.space, searcher.variation
    train = {e.id for e in TASK.train}
    stream = RandomStream(seed)
    with stream.active() as rng:
        a, b = space.random_individual(rng), space.random_individual(rng)
        for _ in range(edits):
            if rng.random() < 0.3:
                variation.mate(a, b, rng)
            variation.mutate(a, rng)
            variation.mutate_gene(b, rng.randrange(7), rng)
    for individual in (a, b):
        prompt = space.prompt(individual)
        if len(set(individual[WORDS])) < 2:  # a random draw may repeat a word; ops never do
            assert prompt is None
            continue
        assert prompt is not None
        prompt.check_task(TASK)
        assert len(individual[INSTRUCTION]) <= 3 and len(individual[TOKENS]) <= 2
        assert len(individual[DEMOS]) <= 2 and len(set(individual[DEMOS])) == len(individual[DEMOS])
        assert set(individual[DEMOS]) <= train
        assert all(w in pool for w, pool in zip(individual[WORDS], WORDS_POOL, strict=True))
        assert from_json(json.loads(json.dumps(to_json(individual)))) == individual


def test_phrase_and_token_operators():
    searcher = make()
    variation = searcher.variation
    with RandomStream(1).active() as rng:
        phrases = ["Classify the text.", "Be brief."]
        ind = make_individual(phrases, (), ["Review"], "\n", (), "It was", ["bad", "good"])
        assert variation.swap_phrases(ind, rng)
        assert ind[INSTRUCTION] == ("Be brief.", "Classify the text.")
        assert variation.delete_phrase(ind, rng) and len(ind[INSTRUCTION]) == 1
        assert variation.add_phrase(ind, rng) and len(ind[INSTRUCTION]) == 2
        before = ind[INSTRUCTION]
        assert variation.substitute_word(ind, rng)
        changed = [(x, y) for x, y in zip(before, ind[INSTRUCTION], strict=True) if x != y]
        assert len(changed) == 1  # one phrase, one word in it
        old, new = (p.split(" ") for p in changed[0])
        assert len(old) == len(new) and sum(x != y for x, y in zip(old, new, strict=True)) == 1
        assert variation.paraphrase(ind, rng)  # symbolic: another phrase of the pool
        assert all(p in searcher.space.phrases for p in ind[INSTRUCTION])
        assert variation.add_token(ind, rng) and variation.add_token(ind, rng)
        assert not variation.add_token(ind, rng)  # max_triggers = 2
        prompt = searcher.space.prompt(ind)
        assert prompt.template.count("[T]") == 2 and prompt.template.endswith("[T] [T] It was")
        assert variation.add_demo(ind, rng) and variation.add_demo(ind, rng)
        assert not variation.add_demo(ind, rng) and variation.swap_demos(ind, rng)


# -- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ga", "de"])
def test_improves_a_planted_objective(algorithm):
    gains = []
    for seed in range(5):
        searcher = make(seed, algorithm=algorithm, population_size=8)
        best = evolve(searcher, 12)
        # Generation 0 is zero-shot with a pool instruction: the planted phrase and demos
        # must be found by mutation and crossover.
        assert best[0] <= 0.4
        gains.append(max(best) - best[0])
        assert planted(searcher.best()[0]) == max(best)  # the hall of fame holds the best
        # Survival keeps the best (GA: parents compete with children; DE: one-to-one), so the
        # population's mean never drops.
        means = [h["mean"] for h in searcher.history]
        assert all(b >= a - 1e-12 for a, b in zip(means, means[1:], strict=False)), means
    assert min(gains) >= 0.15 - 1e-9 and sum(gains) / len(gains) >= 0.25, gains


def test_beats_random_search_at_the_same_budget():
    def best_random(seed):
        black_box = ("phrases", "max_triggers", "demo_pool")
        space = {k: v for k, v in SPACE.items() if k not in black_box}
        searcher = create_searcher("random", space, context(seed))
        return max(planted(p) for p in searcher.ask(96))

    evolved = [max(evolve(make(s), 12)) for s in range(5)]
    sampled = [best_random(s) for s in range(5)]
    assert sum(evolved) > sum(sampled), (evolved, sampled)


def test_generation_advances_only_when_all_offspring_are_told():
    searcher = make(population_size=4)
    first = searcher.ask(3)
    assert len(first) == 3 and searcher.generation == 0
    searcher.tell(outcomes(searcher, [(p, evaluation(p, 0.5)) for p in first]))
    rest = searcher.ask(3)  # the generation's last member only
    assert len(rest) == 1 and searcher.ask(3) == []
    searcher.tell(outcomes(searcher, [(rest[0], evaluation(rest[0], 0.5))]))
    assert searcher.generation == 1 and len(searcher.ask(4)) == 4


def test_racing_stopped_candidates_rank_below_full_split_ones():
    ranking = Ranking((("cross_entropy", MINIMIZE),))
    searcher = make(ctx=context(ranking=ranking), population_size=4)
    a, b, c, d = searcher.ask(4)

    def scored(prompt, ce, ids=DEV, error=None):
        objectives = {} if error else {"cross_entropy": ce}
        return Evaluation(prompt.key, "dev", tuple(ids), [], objectives, len(ids), error=error)

    # b and c were stopped by racing with excellent minibatch scores; d failed.
    told = [(a, scored(a, 0.9)), (b, scored(b, 0.1, DEV[:8])), (c, scored(c, 0.2, DEV[:16])),
            (d, scored(d, 0, error="boom"))]  # fmt: skip
    searcher.tell(outcomes(searcher, told))
    ranked = [searcher.prompt(i).key for i in searcher.hall_of_fame]
    assert ranked == [a.key, c.key, b.key, d.key]
    fitness = {searcher.prompt(i).key: i.fitness.values for i in searcher.population}
    assert fitness[a.key] == (1.0, -0.9) and fitness[b.key] == (0.25, -0.1)
    assert fitness[d.key] == (0.0, float("-inf"))


def test_initial_members_come_first_and_bad_options_are_errors():
    initial = [{"instruction": "Judge the review.", "cue": "Sentiment:", "field_label": "Review",
                "label_words": ["awful", "fine"], "demos": [TASK.train[0].id]}]  # fmt: skip
    first = make(initial=initial).ask(1)[0]
    assert first.instruction == "Judge the review." and first.label_words == ("awful", "fine")
    assert first.template == "Review: {text}\nSentiment:" and first.demos == (TASK.train[0].id,)
    with pytest.raises(PromptscoutError, match="'algorithm' must be 'ga' or 'de'"):
        make(algorithm="cmaes")
    with pytest.raises(PromptscoutError, match="'initial' has no key 'words'"):
        make(initial=[{"words": ["a", "b"]}])
    with pytest.raises(PromptscoutError, match="demo 'dev-1' is not a train id"):
        make(initial=[{"demos": ["dev-1"]}])
    with pytest.raises(PromptscoutError, match="'population_size' must be at least 2"):
        make(population_size=1)
    with pytest.raises(PromptscoutError, match="'lm_operators' needs the campaign's model"):
        make(lm_operators=True)


@pytest.mark.parametrize("algorithm", ["ga", "de"])
def test_deterministic_and_resumable_mid_generation(algorithm):
    def run(searcher, rounds):
        keys = []
        for _ in range(rounds):
            prompts = searcher.ask(3)  # 3 does not divide the population: generations straddle
            keys += [p.key for p in prompts]
            # About half are stopped by racing (a partial split), as in a campaign.
            told = [(p, evaluation(p, planted(p), DEV[: 8 * (1 + int(p.key, 16) % 4)]))
                    for p in prompts]  # fmt: skip
            searcher.tell(outcomes(searcher, told))
        return keys

    straight = make(7, algorithm=algorithm, population_size=5)
    expected = run(straight, 12)
    assert run(make(7, algorithm=algorithm, population_size=5), 12) == expected
    assert run(make(8, algorithm=algorithm, population_size=5), 12) != expected
    first = make(7, algorithm=algorithm, population_size=5)
    keys = run(first, 5)
    state = json.loads(json.dumps(first.state(), allow_nan=False))  # JSON-ready, no infinities
    second = make(7, algorithm=algorithm, population_size=5)
    second.load_state(state)
    keys += run(second, 7)
    assert keys == expected
    assert second.state() == straight.state()
    with pytest.raises(PromptscoutError, match="does not match"):
        make(7, algorithm="de" if algorithm == "ga" else "ga").load_state(state)


def test_only_prompts_cross_process_boundaries():
    prompts = make().ask(4)
    assert all(type(p) is Prompt for p in pickle.loads(pickle.dumps(prompts)))


# -- LM operators ---------------------------------------------------------------------------


def test_clean_keeps_usable_answers_and_rejects_the_rest():
    assert clean(" Decide if the review is positive.\nMore text", ["x"]) == (
        "Decide if the review is positive."
    )
    assert clean('Rewritten: "Tell whether the film is liked"', ["x"]) == (
        "Tell whether the film is liked."
    )
    assert clean("Say if it is good. Then say why and", ["x"]) == "Say if it is good."  # cut off
    assert clean("Say if it is good and then", ["x"]) is None  # cut off with no full sentence
    assert clean("positive", ["x"]) is None  # too short
    assert clean("Classify the text.", ["Classify the text"]) is None  # a repeat
    assert clean("Use {text} as input here.\n", ["x"]) is None  # template syntax
    assert clean("\n\n", ["x"]) is None


def test_lm_operators_on_a_tiny_model_stay_valid_and_fall_back(tiny_causal):
    ctx = context(3, model_provider=lambda: tiny_causal)
    searcher = make(ctx=ctx, lm_operators=True, lm_max_new_tokens=8, population_size=4)
    for _ in range(3):
        prompts = searcher.ask(4)
        for prompt in prompts:
            prompt.check_task(TASK)
        searcher.tell(outcomes(searcher, [(p, evaluation(p, planted(p))) for p in prompts]))
    stats = searcher.lm.stats
    assert stats["used"] + stats["fallback"] > 0  # the model was asked
    assert len(searcher.lm.cache) > 0
    # A resumed searcher answers from the saved cache without the model.
    state = json.loads(json.dumps(searcher.state()))
    again = make(ctx=context(3, model_provider=lambda: pytest.fail("model asked")),
                 lm_operators=True, lm_max_new_tokens=8, population_size=4)  # fmt: skip
    again.load_state(state)
    assert again.lm.cache == searcher.lm.cache


# -- campaigns ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sst2-evolutionary.toml", "mr-evolutionary.toml"])
def test_example_campaigns_build(name):
    config = load_config(Path(__file__).parents[1] / "examples" / name)
    spec = next(s for s in config.searchers if s.type == "evolutionary")
    task = load_task(config.task.spec, seed=config.task.split_seed)
    searcher = create_searcher(spec.type, spec.options, SearchContext(task, task.label_words, 0))
    prompts = searcher.ask(100)
    assert len(prompts) == searcher.config.population_size
    assert all(not p.demos for p in prompts)  # the first generation is zero-shot
