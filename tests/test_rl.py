"""The rl searcher: its reward, the policy's gradients and learning, determinism, and a killed
campaign resuming to the same result (the shared suite is in test_searchers.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from promptscout.errors import PromptscoutError
from promptscout.searchers import SearchContext, create_searcher
from promptscout.searchers.rl import reward, z_scores
from promptscout.searchers.rl.policy import PromptPolicy, word_candidates
from promptscout.searchers.stream import BalancedStream
from promptscout.tasks import load_task

# A slow learner: the tiny policy keeps sampling new prompts, so the periodic greedy prompts are
# new too (at the default rate it settles on one prompt within a few steps).
SMALL = {"steps": 6, "train_examples": 4, "greedy_every": 3, "learning_rate": 0.001}


def make(model, seed: int = 0, **options):
    task = load_task("sst-2")
    context = SearchContext(task, ("terrible", "great"), seed, model_provider=lambda: model)
    return create_searcher("rl", {**SMALL, **options}, context)


def run(searcher, n: int = 3) -> list[str]:
    keys = []
    while not searcher.exhausted:
        keys += [p.key for p in searcher.ask(n)]
    return keys


# -- the reward --------------------------------------------------------------------------------


def test_reward_scales_the_gold_gap_by_correctness():
    rows = np.log([[0.1, 0.9], [0.6, 0.4], [0.5, 0.5]])
    # gaps for gold class 1: +0.8 (right), -0.2 (wrong), 0.0 (a tie is not a hit)
    assert reward(rows[:1], [1]) == pytest.approx(1.8 * 0.8)
    assert reward(rows[1:2], [1]) == pytest.approx(2.0 * -0.2)
    assert reward(rows[2:], [1]) == 0.0
    assert reward(rows, [1, 1, 1]) == pytest.approx((1.44 - 0.4 + 0.0) / 3)
    assert reward(rows[:1], [1], correct_coeff=1.0) == pytest.approx(0.8)


def test_reward_normalises_over_the_classes_and_takes_the_best_other_class():
    # Log-probabilities over the whole vocabulary (summing to less than one) are normalised over
    # the label words first; with three classes the gap is to the strongest rival.
    rows = np.log([[0.02, 0.05, 0.03], [0.5, 0.2, 0.3]])
    assert reward(rows[:1], [1]) == pytest.approx(1.8 * (0.5 - 0.3))
    assert reward(rows[1:], [2]) == pytest.approx(2.0 * (0.3 - 0.5))


def test_reward_batches_are_class_balanced_and_resume_exactly():
    labels = [0, 1] * 2 + [0] * 8  # 10 of class 0, 2 of class 1
    stream, rng = BalancedStream(labels), np.random.default_rng(0)
    first = stream.draw(6, rng)
    assert [labels[i] for i in first] == [0, 0, 0, 1, 1]  # 3 each; class 1 has only 2
    assert len(set(first)) == 5
    second = stream.draw(6, rng)
    assert not set(first[:3]) & set(second[:3])  # class 0 reads on through its permutation
    saved = json.loads(json.dumps(stream.state()))
    state = rng.bit_generator.state
    expected = [stream.draw(7, rng) for _ in range(3)]
    resumed = BalancedStream(labels)
    resumed.load(saved)
    rng.bit_generator.state = state
    assert [resumed.draw(7, rng) for _ in range(3)] == expected


def test_z_scores():
    z = z_scores([1.0, 2.0, 3.0])
    assert z.mean() == pytest.approx(0.0) and z.std() == pytest.approx(1.0)
    assert not z_scores([0.5, 0.5]).any()


# -- the policy --------------------------------------------------------------------------------


def policy_on(model, **kwargs) -> PromptPolicy:
    candidates = word_candidates(model, 40)
    return PromptPolicy(model, candidates, model.tokenize("Prompt:"), **kwargs)


def test_candidates_are_plain_words_that_tokenise_to_themselves(tiny_causal):
    candidates = word_candidates(tiny_causal, 1000, exclude=["great"])
    assert len(candidates) > 20
    for token in candidates:
        text = tiny_causal.tokenizer.decode([token])
        assert text[0] == " " and text[1:].isalpha() and tiny_causal.tokenize(text) == [token]
    assert tiny_causal.tokenize(" great")[0] not in candidates


def test_gradients_reach_the_head_only(tiny_causal):
    policy = policy_on(tiny_causal, learning_rate=0.01)
    backbone = {k: v.clone() for k, v in tiny_causal.hf_model.state_dict().items()}
    head = {k: v.detach().clone() for k, v in policy.params.items()}
    rng = np.random.default_rng(0)
    tokens, states = policy.sample(4, 3, rng)
    assert not states.requires_grad
    policy.update(states, tokens, [1.0, -1.0, 0.5, -0.5])
    assert all(p.grad is None for p in tiny_causal.hf_model.parameters())
    for k, v in tiny_causal.hf_model.state_dict().items():
        assert torch.equal(v, backbone[k])
    assert all(policy.params[k].grad is not None for k in head)
    assert not torch.equal(policy.params["w2"], head["w2"])  # the zero layer moved


def test_untrained_policy_is_the_backbone_restricted_to_the_candidates(tiny_causal):
    policy = policy_on(tiny_causal)
    ids = torch.tensor([tiny_causal.tokenize("Prompt:")])
    with torch.no_grad():
        full = tiny_causal.hf_model(input_ids=ids).logits[0, -1, policy.candidates]
    _, states = policy.sample(1, 1, np.random.default_rng(0), greedy=True)
    with torch.no_grad():
        ours = policy.logits(states[:, 0])[0]
    assert torch.allclose(ours, full.float(), atol=1e-4)


def test_policy_learns_a_planted_reward(tiny_causal):
    """Reward = how many of a prompt's tokens are among three planted words: REINFORCE with
    z-scored rewards makes the greedy prompt exactly those words (no repeats: each once)."""
    policy = policy_on(tiny_causal, learning_rate=0.02)
    rng = np.random.default_rng(1)
    planted = set(policy.candidates[5:8])
    before = policy.sample(1, 3, rng, greedy=True)[0][0]
    for _ in range(40):
        tokens, states = policy.sample(16, 3, rng)
        rewards = [sum(t in planted for t in row) for row in tokens]
        policy.update(states, tokens, z_scores(rewards))
    after = policy.sample(1, 3, rng, greedy=True)[0][0]
    assert set(before) != planted and set(after) == planted


def test_prompts_repeat_no_token_unless_allowed(tiny_causal):
    rng = np.random.default_rng(0)
    policy = policy_on(tiny_causal)
    # A planted preference for one word: without the mask it would fill every slot.
    with torch.no_grad():
        policy.params["b2"][3] = 50.0
    tokens, states = policy.sample(16, 6, rng)
    assert all(len(set(row)) == 6 for row in tokens)
    assert all(row[0] == policy.candidates[3] for row in tokens)
    policy.update(states, tokens, z_scores(range(16)))  # masked log-probs stay finite
    assert all(torch.isfinite(v).all() for v in policy.params.values())
    repeating = policy_on(tiny_causal, repeats=True)
    with torch.no_grad():
        repeating.params["b2"][3] = 50.0
    assert repeating.sample(2, 6, rng)[0] == [[policy.candidates[3]] * 6] * 2
    with pytest.raises(PromptscoutError, match="at least 41 candidate"):
        policy.sample(1, 41, rng)


def test_prior_zero_starts_uniform_over_the_candidates(tiny_causal):
    policy = policy_on(tiny_causal, prior=0.0)
    _, states = policy.sample(2, 2, np.random.default_rng(0))
    with torch.no_grad():
        logits = policy.logits(states)
    assert torch.allclose(logits, torch.zeros_like(logits))


def test_policy_state_round_trip_is_exact(tiny_causal):
    a = policy_on(tiny_causal, learning_rate=0.01)
    rng = np.random.default_rng(0)
    tokens, states = a.sample(4, 3, rng)
    a.update(states, tokens, [1.0, -1.0, 0.0, 0.0])
    b = policy_on(tiny_causal, learning_rate=0.01, seed=5)
    b.load_state_arrays(a.state_arrays())
    tokens, states = a.sample(4, 3, np.random.default_rng(2))
    for p in (a, b):
        p.update(states, tokens, [0.0, 1.0, -1.0, 0.0])
    for k, v in a.state_arrays().items():
        np.testing.assert_array_equal(v, b.state_arrays()[k])


# -- the searcher ------------------------------------------------------------------------------


def test_prompts_render_as_the_policy_wrote_them(tiny_causal):
    searcher = make(tiny_causal)
    task = searcher.context.task
    for prompt in searcher.ask(4):
        tokens = prompt.metadata["tokens"]
        assert prompt.template == "{text} [T][T][T][T][T]"
        for example in task.train[:5]:
            ids = tiny_causal.tokenize(prompt.render(example))
            assert ids[-len(tokens) :] == tokens


def test_trains_asks_greedy_prompts_then_is_exhausted(tiny_causal):
    searcher = make(tiny_causal)
    asked = []
    while not searcher.exhausted:
        asked.append(searcher.ask(3))
    assert len(searcher.curve) == 6 and [p[0] for p in searcher.curve] == list(range(6))
    greedy = [p for batch in asked for p in batch if p.metadata.get("greedy")]
    sampled = [p for batch in asked for p in batch if "reward" in p.metadata]
    assert greedy and all(len(b) == 1 for b in asked if b and b[0].metadata.get("greedy"))
    assert len(sampled) > 12 and searcher.ask(3) == []
    assert all(h.get("loss") is not None for h in searcher.history)


def test_a_policy_that_repeats_itself_still_trains_every_step(tiny_causal):
    """Samples already scored are not asked again, but training goes on: the searcher answers
    nothing only once it is exhausted (an empty ask would read as 'nothing left')."""
    searcher = make(tiny_causal, vocabulary=["the"], repeats=True)  # always the same prompt
    while not searcher.exhausted:
        batch = searcher.ask(3)
        assert batch or searcher.exhausted
    assert len(searcher.curve) == SMALL["steps"]


def test_same_seed_same_prompts_and_weights(tiny_causal):
    a, b, c = make(tiny_causal, seed=4), make(tiny_causal, seed=4), make(tiny_causal, seed=5)
    assert run(a) == run(b) != run(c)
    assert json.dumps(a.state()) == json.dumps(b.state())


def test_state_resumes_training_exactly(tiny_causal):
    straight = make(tiny_causal, seed=2)
    expected = run(straight)
    first = make(tiny_causal, seed=2)
    keys = [p.key for p in first.ask(3)] + [p.key for p in first.ask(3)]
    state = json.loads(json.dumps(first.state()))
    second = make(tiny_causal, seed=2)
    second.load_state(state)
    keys += run(second)
    assert keys == expected
    assert json.dumps(second.state()) == json.dumps(straight.state())


def test_bad_options_are_precise_errors(tiny_causal):
    with pytest.raises(PromptscoutError, match="'num_triggers' is 2"):
        make(tiny_causal, template="{text} [T][T][T]", num_triggers=2)
    with pytest.raises(PromptscoutError, match="'learning_rate' must be positive"):
        make(tiny_causal, learning_rate=0.0)
    with pytest.raises(PromptscoutError, match="single-token words"):
        make(tiny_causal, vocabulary=["zqxvw"]).ask(2)
    searcher = make(tiny_causal, template="Review: {text} It was", num_triggers=2)
    assert searcher.template.template == "Review: {text} It was [T][T]"
