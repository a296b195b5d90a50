"""The PEFT searcher: trains an adapter, proposes it after each round of epochs, stops early on
dev (see the package docstring)."""

from __future__ import annotations

import dataclasses
from typing import Any

from promptscout.adapters import CONFIG
from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt
from promptscout.searchers.base import SearchContext
from promptscout.searchers.parametric.config import PeftSearcherConfig
from promptscout.searchers.parts import balanced_demo_pool
from promptscout.searchers.trained import TrainedSearcher


class PeftSearcher(TrainedSearcher):
    """Prompt tuning, prefix tuning, P-tuning or LoRA on PEFT, with early stopping on dev."""

    type_name = "peft"
    config_class = PeftSearcherConfig
    config: PeftSearcherConfig
    state_version = 1

    def __init__(self, config: PeftSearcherConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        self.base = dataclasses.replace(
            self.base,
            demos=tuple(balanced_demo_pool(context, config.demos)),
            nearest_demos=config.nearest_demos,
        )
        self._checkpoint: dict[str, Any] | None = None  # restored, loaded on first use

    @property
    def trainer(self) -> Any:
        """The trainer over a copy of the campaign's model (made on first use; a resumed
        searcher continues from its last checkpoint)."""
        if self._trainer is None:
            from promptscout.model.causal import CausalLM
            from promptscout.searchers.parametric.training import AdapterTrainer

            model = self.context.model()
            if not isinstance(model, CausalLM):
                raise PromptscoutError(
                    f"the peft searcher needs an in-process causal LM; model '{model.name}' is "
                    f"{getattr(model, 'kind', type(model).__name__)}"
                )
            train = self.context.task.train
            self._trainer = AdapterTrainer(
                model,
                self.config,
                self.training_texts(),
                [int(e.label) for e in train],
                self.base.label_words,
                self.context.seed,
            )
            if self._checkpoint is not None:
                self._trainer.load_checkpoint(self._checkpoint)
                self._checkpoint = None
        return self._trainer

    def check(self) -> None:
        """Build the trainer now: PEFT's refusals (a method the model cannot take,
        ``target_modules`` that match nothing) and a model that is not an in-process causal LM
        are one error line before the campaign runs anything."""
        _ = self.trainer

    def ask(self, n: int) -> list[Prompt]:
        if self._exhausted or n < 1:
            return []
        for _ in range(self.config.epochs_per_ask):
            self.losses.append(self.trainer.epoch(self.epoch))
            self.epoch += 1
        bundle = self.trainer.bundle()
        metadata = {
            "epoch": self.epoch,
            "method": self.config.method,
            "trained_numbers": int(sum(v.size for k, v in bundle.items() if k != CONFIG)),
            "train_loss": round(self.losses[-1], 6),
        }
        return [self._offer(bundle, metadata)]

    # -- state: a checkpoint per round of epochs ------------------------------------------------

    def save(self) -> dict[str, Any]:
        trainer = self._trainer
        checkpoint = trainer.checkpoint() if trainer is not None else self._checkpoint
        return {"checkpoint": checkpoint, **self.progress()}

    def restore(self, state: dict[str, Any]) -> None:
        self.restore_progress(state)
        self._checkpoint = state["checkpoint"]
        self._trainer = None
        self._offered = {}
