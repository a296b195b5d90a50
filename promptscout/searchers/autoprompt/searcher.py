"""The AutoPrompt searcher: HotFlip-guided swaps of discrete trigger tokens (see the package
docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.prompts import LABEL_SLOT, Prompt, continuation
from promptscout.searchers.autoprompt.config import DEFAULT_TRIGGERS, AutoPromptConfig
from promptscout.searchers.autoprompt.labels import class_margins, pick_label_words, train_probe
from promptscout.searchers.base import BestSoFar, Outcome, SearchContext, Searcher
from promptscout.searchers.stream import ExampleStream
from promptscout.searchers.triggers import TriggerTemplate

if TYPE_CHECKING:
    from promptscout.model import LanguageModel
    from promptscout.tasks import Example

LOOKAHEAD = 8  # ranked tokens tried per wanted candidate before giving up on filling k


def label_loss(scores: np.ndarray, gold: Sequence[int], loss: str) -> float:
    """Mean label loss of ``[texts, classes]`` label-word log-probabilities (see
    :data:`promptscout.searchers.autoprompt.gradients.LOSSES`)."""
    if loss == "class":
        top = scores.max(axis=1, keepdims=True)
        scores = scores - top - np.log(np.exp(scores - top).sum(axis=1, keepdims=True))
    return float(-scores[np.arange(len(scores)), np.asarray(gold)].mean())


class AutoPromptSearcher(Searcher):
    """AutoPrompt (Shin et al. 2020): gradient-guided search over the template's trigger tokens.

    Each step takes the gradient of the label loss with respect to the trigger embeddings on a
    batch of train examples, picks a slot at random, ranks the vocabulary by ``-(E . g)``, keeps
    the best ``candidates`` tokens that pass the filters and render as themselves in context,
    re-scores them in one batched pass on fresh train examples, and swaps the best in only if it
    lowers the loss. Every accepted swap is a new prompt for the campaign to score on dev; the
    best by dev score is kept (:attr:`best_prompt`).

    Example:
        >>> from promptscout.model import load_model
        >>> from promptscout.searchers import SearchContext, create_searcher
        >>> from promptscout.tasks import load_task
        >>> task = load_task("sst-2")
        >>> model = load_model("smollm2-135m-instruct")  # doctest: +SKIP
        >>> context = SearchContext(task, ("terrible", "great"), seed=0,
        ...                         model_provider=lambda: model)  # doctest: +SKIP
        >>> searcher = create_searcher(
        ...     "autoprompt", {"template": "{text} [T][T][T]", "iterations": 4}, context
        ... )  # doctest: +SKIP
        >>> [p.triggers for p in searcher.ask(2)]  # doctest: +SKIP
        [('the', ' the', ' the'), ...]
    """

    type_name = "autoprompt"
    config_class = AutoPromptConfig
    config: AutoPromptConfig
    state_version = 1
    reads_train_labels = True

    def __init__(self, config: AutoPromptConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        self.template = TriggerTemplate.for_task(
            config.template,
            config.num_triggers or DEFAULT_TRIGGERS,
            context.task,
            context.label_words,
            "autoprompt",
        )
        self._rng = np.random.default_rng(context.seed)
        self._started = False
        self._tokens: list[int] = []  # the current trigger token per slot
        self._words: tuple[str, ...] = tuple(context.label_words)
        self._step = 0
        self._stream = ExampleStream(len(context.task.train))
        self._asked: dict[str, list[int]] = {}  # prompt key -> its trigger tokens
        self.best_so_far = BestSoFar()
        self._history: list[dict[str, Any]] = []
        # Derived from the model on first use (not state): token texts and the static filter.
        self._vocab: list[str] | None = None
        self._blocked: np.ndarray | None = None

    # -- prompts -----------------------------------------------------------------------------

    @property
    def tokens(self) -> list[int]:
        """The current trigger token ids, one per slot."""
        return list(self._tokens)

    @property
    def history(self) -> list[dict[str, Any]]:
        """One record per search step: the slot, the losses on its eval batch, the swap."""
        return list(self._history)

    def _model(self) -> LanguageModel:
        model = self.context.model()
        if model.kind == "causal" and LABEL_SLOT in self.template.template.removesuffix(LABEL_SLOT):
            raise PromptscoutError(
                f"autoprompt: a causal LM predicts the label after the text; put {LABEL_SLOT} "
                f"last in the template or leave it out ({self.template.template!r})"
            )
        if self._vocab is None:
            from promptscout.searchers.autoprompt.gradients import token_texts

            self._vocab = token_texts(model)
        return model

    def _texts(self, tokens: Sequence[int]) -> tuple[str, ...]:
        assert self._vocab is not None
        return self.template.slot_texts([self._vocab[t] for t in tokens])

    def prompt(self, tokens: Sequence[int] | None = None, **metadata: Any) -> Prompt:
        """The prompt with ``tokens`` (default: the current triggers) in the slots."""
        tokens = self._tokens if tokens is None else tokens
        return Prompt(
            self.template.template,
            self._words,
            triggers=self._texts(tokens),
            metadata={"tokens": list(tokens), **metadata},
        )

    def _render(
        self, examples: Sequence[Example], tokens: Sequence[int]
    ) -> tuple[list[str], list[list[tuple[int, int]]]]:
        slot_texts = self._texts(tokens)
        rendered = [self.template.render(e.fields, slot_texts) for e in examples]
        reference = Prompt(self.template.template, self._words, triggers=slot_texts)
        if rendered and rendered[0][0] != reference.render(examples[0]):
            raise PromptscoutError(  # the slot spans would be wrong: a bug, never bad input
                f"autoprompt: template {self.template.template!r} renders differently in slots"
            )
        return [t for t, _ in rendered], [s for _, s in rendered]

    # -- setup -------------------------------------------------------------------------------

    def _start(self, model: LanguageModel) -> None:
        """Initial triggers and (optionally) the label words; the first ask does this once."""
        from promptscout.searchers.autoprompt.gradients import triggers_intact

        word = self.config.initial_trigger.strip()
        train = self.context.task.train
        spellings = (model.tokenize(" " + word), model.tokenize(word))
        options = [ids[0] for ids in spellings if len(ids) == 1]
        for token in dict.fromkeys(options):
            tokens = [token] * self.template.slots
            if all(triggers_intact(model, *self._render(train, tokens), tokens)):
                self._tokens = tokens
                break
        else:
            raise PromptscoutError(
                f"autoprompt: initial_trigger {word!r} does not stay one token in every [T] slot "
                f"of {self.template.template!r}; choose another word, or put spaces between slots"
            )
        if self.config.label_search:
            self._words = self._search_label_words(model)
        self._started = True

    def _search_label_words(self, model: LanguageModel) -> tuple[str, ...]:
        from promptscout.searchers.autoprompt.gradients import output_embeddings, prediction_states

        task = self.context.task
        texts, _ = self._render(task.train, self._tokens)
        weights, bias = train_probe(
            prediction_states(model, texts), [int(e.label) for e in task.train], task.num_classes
        )
        margins = class_margins(weights, bias, output_embeddings(model))
        frame = texts[0].partition(LABEL_SLOT)[0] if model.kind == "masked" else texts[0]
        assert self._vocab is not None
        vocab = self._vocab
        allowed = ~self._static_blocked(model, words=())

        def word_of(token: int) -> str | None:
            word = vocab[token].strip()
            if len(word) < 2 or not word.isalpha():
                return None
            return word if model.tokenize(continuation(frame, word)) == [token] else None

        words = pick_label_words(margins, allowed, word_of, self.config.label_search_candidates)
        if words is None:
            raise PromptscoutError(
                "autoprompt: label search found no single-token word for some class; raise "
                "'label_search_candidates' or turn 'label_search' off"
            )
        return tuple(words)

    def _static_blocked(self, model: LanguageModel, words: Sequence[str]) -> np.ndarray:
        """Tokens never used as triggers, whatever their context."""
        from promptscout.searchers.autoprompt.gradients import special_token_ids

        cfg = self.config
        assert self._vocab is not None
        excluded = {w.strip().lower() for w in cfg.exclude}
        lowered = {w.strip().lower() for w in words}
        label_tokens = {t for w in words for t in model.tokenize(continuation("a", w))}
        label_tokens |= {t for w in words for t in model.tokenize(w)}
        blocked = np.zeros(len(self._vocab), dtype=bool)
        for token, text in enumerate(self._vocab):
            bare = text.strip().lower()
            blocked[token] = (
                not bare  # invisible, or nothing: no trigger to read
                or LABEL_SLOT in text  # would move a masked LM's label slot
                or bare in excluded
                or (cfg.ascii_only and not (text.isascii() and text.isprintable()))
                or (cfg.filter_label_words and (bare in lowered or token in label_tokens))
            )
        if cfg.filter_special:
            special = [t for t in special_token_ids(model) if t < len(blocked)]
            blocked[special] = True
        return blocked

    # -- one search step ---------------------------------------------------------------------

    def _draw(self, m: int) -> list[Example]:
        """The next ``m`` distinct train examples (at most the split) of a shuffled stream: each
        step reads examples the previous ones did not, as far as the split allows."""
        train = self.context.task.train
        return [train[i] for i in self._stream.draw(m, self._rng, distinct=True)]

    def _search_step(self, model: LanguageModel) -> bool:
        """One HotFlip step on one slot; True when a swap was accepted."""
        from promptscout.searchers.autoprompt.gradients import (
            hotflip_scores,
            label_rows,
            trigger_gradient,
            triggers_intact,
        )

        cfg = self.config
        if self._blocked is None:
            self._blocked = self._static_blocked(model, self._words)
        slot = int(self._rng.integers(self.template.slots))
        grad_examples = self._draw(cfg.grad_batch * cfg.accumulation_steps)
        eval_examples = self._draw(cfg.eval_examples)
        record: dict[str, Any] = {"step": self._step, "slot": slot, "accepted": False}
        self._step += 1
        self._history.append(record)

        texts, spans = self._render(grad_examples, self._tokens)
        rows = label_rows(model, texts, spans, self._tokens, self._words)
        if not rows.kept:
            return False
        gold = [int(e.label) for e in grad_examples]
        record["grad_loss"], grad = trigger_gradient(
            model, rows, gold, self._tokens, loss=cfg.loss, batch=cfg.grad_batch
        )
        scores = hotflip_scores(model, grad[slot])
        scores[self._blocked] = -np.inf
        scores[self._tokens[slot]] = -np.inf
        order = np.argsort(-scores, kind="stable")

        # Re-score on the eval examples where the current triggers render as themselves.
        texts, spans = self._render(eval_examples, self._tokens)
        keep = [i for i, ok in enumerate(triggers_intact(model, texts, spans, self._tokens)) if ok]
        if not keep:
            return False
        examples = [eval_examples[i] for i in keep]
        trials: list[list[int]] = []
        for token in order[: cfg.candidates * LOOKAHEAD]:
            if len(trials) == cfg.candidates or not np.isfinite(scores[token]):
                break
            trial = list(self._tokens)
            trial[slot] = int(token)
            if all(triggers_intact(model, *self._render(examples, trial), trial)):
                trials.append(trial)
        if not trials:
            return False
        batch = [self._tokens, *trials]
        all_texts = [t for tokens in batch for t in self._render(examples, tokens)[0]]
        out = model.score_labels(all_texts, self._words)
        gold = [int(e.label) for e in examples]
        n = len(examples)
        losses = [label_loss(out[k * n : (k + 1) * n], gold, cfg.loss) for k in range(len(batch))]
        best = 1 + int(np.argmin(losses[1:]))
        record.update(
            current_loss=losses[0],
            candidate=batch[best][slot],
            candidate_loss=losses[best],
            candidates=len(trials),
        )
        if losses[best] < losses[0]:
            record["accepted"] = True
            self._tokens = batch[best]
            return True
        return False

    # -- the searcher contract ---------------------------------------------------------------

    def ask(self, n: int) -> list[Prompt]:
        model = self._model()
        batch: list[Prompt] = []
        if not self._started:
            self._start(model)
            batch.append(self.prompt(step=0))
        while len(batch) < n and self._step < self.config.iterations:
            if self._search_step(model):
                loss = self._history[-1]["candidate_loss"]
                prompt = self.prompt(step=self._step, train_loss=loss)
                if prompt.key not in self._asked and all(p.key != prompt.key for p in batch):
                    batch.append(prompt)
        for prompt in batch:
            self._asked[prompt.key] = list(prompt.metadata["tokens"])
        return batch

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self.best_so_far.update(outcome)

    @property
    def exhausted(self) -> bool:
        return self._started and self._step >= self.config.iterations

    def save(self) -> dict[str, Any]:
        return {
            "started": self._started,
            "tokens": self._tokens,
            "label_words": list(self._words),
            "step": self._step,
            "rng": self._rng.bit_generator.state,
            "stream": self._stream.order,
            "cursor": self._stream.cursor,
            "asked": self._asked,
            "best": self.best_so_far.record,
            "history": self._history,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._started = bool(state["started"])
        self._tokens = [int(t) for t in state["tokens"]]
        self._words = tuple(state["label_words"])
        self._step = int(state["step"])
        self._rng.bit_generator.state = state["rng"]
        self._stream.load(state["stream"], state["cursor"])
        self._asked = {k: [int(t) for t in v] for k, v in state["asked"].items()}
        self.best_so_far = BestSoFar(state["best"])
        self._history = list(state["history"])
        self._blocked = None
