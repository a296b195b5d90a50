"""The rl searcher: a learned policy writes the prompt's tokens (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt
from promptscout.searchers.base import BestSoFar, Curve, Outcome, SearchContext, Searcher
from promptscout.searchers.rl.config import DEFAULT_TRIGGERS, RLConfig, reward, z_scores
from promptscout.searchers.stream import BalancedStream
from promptscout.searchers.triggers import TriggerTemplate
from promptscout.soft_tensors import pack_array, unpack_array

if TYPE_CHECKING:
    from promptscout.searchers.rl.policy import PromptPolicy
    from promptscout.tasks import Example


class RLSearcher(Searcher):
    """RLPrompt-style policy-gradient prompt writing (Deng et al. 2022).

    Each ``ask(n)`` is one training step: the policy samples ``n`` prompts (at least two, so
    their rewards can be compared), each is scored by the task model on the step's batch of
    train examples (:func:`~promptscout.searchers.rl.config.reward`), the rewards are z-scored
    across the step's prompts and a REINFORCE update moves the policy's head; the sampled prompts
    are returned for the campaign to score on dev, which only ranks them (dev never trains the
    policy). Every ``greedy_every`` steps, and once after the last, an ask returns the policy's
    greedy prompt alone.

    Example:
        >>> from promptscout.model import load_model
        >>> from promptscout.searchers import SearchContext, create_searcher
        >>> from promptscout.tasks import load_task
        >>> task = load_task("sst-2")
        >>> model = load_model("smollm2-135m-instruct")  # doctest: +SKIP
        >>> context = SearchContext(task, ("terrible", "great"), seed=0,
        ...                         model_provider=lambda: model)  # doctest: +SKIP
        >>> searcher = create_searcher("rl", {"steps": 3}, context)  # doctest: +SKIP
        >>> [p.triggers for p in searcher.ask(4)]  # doctest: +SKIP
        [('The', ' following', ...), ...]
        >>> searcher.curves()[0].points  # doctest: +SKIP
        [[0, -0.12]]
    """

    type_name = "rl"
    config_class = RLConfig
    config: RLConfig
    state_version = 2  # 2: a logit per candidate in the head, one train stream per class
    reads_train_labels = True

    def __init__(self, config: RLConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        self._words = tuple(context.label_words)
        self.template = TriggerTemplate.for_task(
            config.template,
            config.num_triggers or DEFAULT_TRIGGERS,
            context.task,
            self._words,
            "rl",
        )
        self._rng = np.random.default_rng(context.seed)
        self._step = 0
        self._final = False  # the last greedy prompt was asked
        self._stream = BalancedStream([int(e.label) for e in context.task.train])
        self._asked: set[str] = set()
        self._curve: list[list[float]] = []
        self._history: list[dict[str, Any]] = []
        self.best_so_far = BestSoFar()
        self._saved_policy: dict[str, np.ndarray] | None = None
        # Built from the model on first use (not state): the policy and the token texts.
        self._policy: PromptPolicy | None = None
        self._texts: dict[int, str] = {}

    # -- the policy and its prompts ------------------------------------------------------------

    def policy(self) -> PromptPolicy:
        """The policy (frozen campaign model + trainable head), built on first use."""
        if self._policy is None:
            from promptscout.searchers.rl.policy import PromptPolicy, word_candidates

            cfg = self.config
            model = self.context.model()
            if cfg.vocabulary:
                candidates = []
                for word in dict.fromkeys(w.strip() for w in cfg.vocabulary):
                    ids = model.tokenize(" " + word)
                    if len(ids) != 1:
                        raise PromptscoutError(
                            f"rl: vocabulary word {word!r} is {len(ids)} tokens after a space in "
                            f"model '{model.name}'; use single-token words"
                        )
                    candidates.append(ids[0])
            else:
                exclude = [*self._words, *cfg.exclude]
                candidates = word_candidates(model, cfg.vocab_size, exclude)
            context_ids = list(getattr(model, "prefix_ids", [])) + model.tokenize(cfg.context)
            self._policy = PromptPolicy(
                model,
                candidates,
                context_ids,
                mlp_hidden=cfg.mlp_hidden,
                learning_rate=cfg.learning_rate,
                prior=cfg.prior,
                repeats=cfg.repeats,
                seed=self.context.seed,
            )
            tokenizer = self._policy.model.tokenizer
            self._texts = {t: tokenizer.decode([t]) for t in candidates}
            if self._saved_policy is not None:
                self._policy.load_state_arrays(self._saved_policy)
                self._saved_policy = None
        return self._policy

    def prompt(self, tokens: Sequence[int], **metadata: Any) -> Prompt:
        """The prompt whose ``[T]`` slots hold ``tokens``' texts."""
        texts = self.template.slot_texts([self._texts[t] for t in tokens])
        return Prompt(
            self.template.template,
            self._words,
            triggers=texts,
            metadata={"tokens": list(tokens), **metadata},
        )

    def greedy_prompt(self) -> Prompt:
        """The policy's most likely prompt now."""
        tokens, _ = self.policy().sample(1, self.template.slots, self._rng, greedy=True)
        return self.prompt(tokens[0], step=self._step, greedy=True)

    @property
    def curve(self) -> list[list[float]]:
        """``[step, mean train reward of the step's sampled prompts]`` per training step."""
        return [list(p) for p in self._curve]

    def curves(self) -> list[Curve]:
        """The reporting hook: the mean train reward per step (the report draws it)."""
        title = f"{self.name}: policy reward per step"
        return [Curve(self.curve, "training step", "mean train reward", title)]

    @property
    def history(self) -> list[dict[str, Any]]:
        """One record per training step: rewards, loss, entropy."""
        return list(self._history)

    # -- one training step ---------------------------------------------------------------------

    def _draw(self, m: int) -> list[Example]:
        """The next train batch: ``m // classes`` examples of each class (at most all of it)."""
        train = self.context.task.train
        return [train[i] for i in self._stream.draw(m, self._rng)]

    def _train_step(self, n: int) -> list[Prompt]:
        cfg, policy = self.config, self.policy()
        tokens, states = policy.sample(n, self.template.slots, self._rng)
        prompts = [self.prompt(t, step=self._step) for t in tokens]
        examples = self._draw(cfg.train_examples)
        gold = [int(e.label) for e in examples]
        texts = [p.render(e) for p in prompts for e in examples]
        scores = policy.model.score_labels(texts, self._words)
        m = len(examples)
        rewards = [
            reward(scores[i * m : (i + 1) * m], gold, cfg.correct_coeff, cfg.wrong_coeff)
            for i in range(len(prompts))
        ]
        advantages = z_scores(rewards)
        record: dict[str, Any] = {"step": self._step, "rewards": rewards, "examples": m}
        if advantages.any():  # all rewards equal: nothing to learn from this step
            record.update(policy.update(states, tokens, advantages, entropy=cfg.entropy))
        self._curve.append([self._step, round(float(np.mean(rewards)), 6)])
        self._history.append(record)
        self._step += 1
        return [
            replace(p, metadata={**p.metadata, "reward": r})
            for p, r in zip(prompts, rewards, strict=True)
        ]

    # -- the searcher contract -----------------------------------------------------------------

    def ask(self, n: int) -> list[Prompt]:
        batch: list[Prompt] = []
        if n < 1 or self.exhausted:
            return batch
        if self._step >= self.config.steps:  # trained: the final greedy prompt, then done
            self._final = True
            prompt = self.greedy_prompt()
            if prompt.key in self._asked:
                return batch
            self._asked.add(prompt.key)
            return [prompt]
        every = self.config.greedy_every
        if every and self._step and self._step % every == 0 and "greedy" not in self._history[-1]:
            self._history[-1]["greedy"] = True  # state: a resumed campaign does not re-ask it
            prompt = self.greedy_prompt()
            if prompt.key not in self._asked:
                self._asked.add(prompt.key)
                return [prompt]
        # Train until a step samples something not scored yet: a sharpened policy often repeats
        # itself, and an empty answer would read to the campaign as a searcher with nothing left.
        while self._step < self.config.steps:
            # Two samples at least: a lone sample's z-scored reward is zero and teaches nothing.
            for prompt in self._train_step(max(n, 2)):
                if len(batch) < n and prompt.key not in self._asked:
                    self._asked.add(prompt.key)
                    batch.append(prompt)
            if batch:
                return batch
            if every and self._step % every == 0:
                return self.ask(n)  # the periodic greedy prompt is due
        return self.ask(n)  # trained: the final greedy prompt

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self.best_so_far.update(outcome)

    @property
    def exhausted(self) -> bool:
        return self._final

    def save(self) -> dict[str, Any]:
        arrays = self._policy.state_arrays() if self._policy is not None else self._saved_policy
        return {
            "step": self._step,
            "final": self._final,
            "rng": self._rng.bit_generator.state,
            "stream": self._stream.state(),
            "asked": sorted(self._asked),
            "best": self.best_so_far.record,
            "history": self._history,
            "policy": {k: pack_array(v) for k, v in arrays.items()} if arrays else None,
            "curve": {"points": self._curve},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._step = int(state["step"])
        self._final = bool(state["final"])
        self._rng.bit_generator.state = state["rng"]
        self._stream.load(state["stream"])
        self._asked = set(state["asked"])
        self.best_so_far = BestSoFar(state["best"])
        self._history = [dict(h) for h in state["history"]]
        self._curve = [list(p) for p in state["curve"]["points"]]
        packed = state["policy"]
        arrays = {k: unpack_array(v) for k, v in packed.items()} if packed else None
        if self._policy is not None and arrays is not None:
            self._policy.load_state_arrays(arrays)
        else:
            self._saved_policy = arrays
