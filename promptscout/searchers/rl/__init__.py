"""RL prompt writing: a policy-gradient-trained policy writes discrete prompt tokens (RLPrompt,
Deng et al. 2022).

The policy is the campaign's causal LM, frozen, with a small trainable MLP head on its last
hidden state that adds a logit per candidate word to the backbone's own (weighted by ``prior``)
(:mod:`promptscout.searchers.rl.policy`); it writes ``num_triggers`` distinct words (unless
``repeats``) from a candidate vocabulary (by default a few thousand frequent plain-word tokens)
after a fixed context, and the words fill the template's ``[T]`` slots
(``"{text} [T][T][T][T][T]"`` by default).

Reward: for each sampled prompt, the task model scores a class-balanced batch of **train** examples
(``score_labels``; the same batch for every prompt of a step, so their rewards compare like with
like, and balanced, so a prompt that always answers one class earns nothing for it); per example
the gap between the gold class's probability and the best other class's is scaled by
``correct_coeff`` (1.8) when right and ``wrong_coeff`` (2.0) when wrong, and averaged. Rewards are
z-scored across the step's prompts (the baseline) and a REINFORCE update moves the head. The
campaign scores the same prompts on dev for the leaderboard; dev never reaches the policy, so its
32 examples stay an honest ranking signal. The greedy prompt is asked every ``greedy_every`` steps
and after the last step.

State (JSON): the head's weights, Adam's moments, the RNG and the per-class train streams, so a
resumed campaign continues training exactly; ``"curve"`` holds the mean reward per step for the
report.
"""

from __future__ import annotations

from promptscout.searchers.rl.config import RLConfig, reward, z_scores
from promptscout.searchers.rl.searcher import RLSearcher

__all__ = ["RLConfig", "RLSearcher", "reward", "z_scores"]
