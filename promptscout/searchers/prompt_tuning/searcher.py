"""The soft-prompt searcher: trains the tensors, proposes them, stops early on dev (see the
package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt
from promptscout.searchers.base import SearchContext
from promptscout.searchers.prompt_tuning.config import SoftConfig
from promptscout.searchers.trained import TrainedSearcher
from promptscout.soft_tensors import FINAL_NORM, PREFIX, pack_array, unpack_array


class SoftSearcher(TrainedSearcher):
    """Prompt tuning (optionally with the final norm) with early stopping on dev."""

    type_name = "soft"
    config_class = SoftConfig
    config: SoftConfig
    state_version = 1

    def __init__(self, config: SoftConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        # The training state (all of it in state(), with the base class's progress()).
        self.tensors: dict[str, np.ndarray] | None = None
        self.anchor: dict[str, np.ndarray] | None = None
        self.adam: dict[str, Any] = {"step": 0, "m": {}, "v": {}}

    # -- training ----------------------------------------------------------------------------

    def _model(self) -> Any:
        return self.context.model()

    def _start(self) -> None:
        """The starting tensors (needs the model: called on the first ask)."""
        from promptscout.model.soft_input import causal_model
        from promptscout.searchers.prompt_tuning.training import final_norm_weights
        from promptscout.searchers.virtual_tokens import init_prefix

        model = causal_model(self._model())
        start = {
            PREFIX: init_prefix(
                model,
                self.config.vectors,
                self.config.init,
                self.config.init_text,
                self.context.seed,
            )
        }
        if self.config.parametric == "final_norm":
            start[FINAL_NORM] = final_norm_weights(model)
        self.tensors = {k: v.copy() for k, v in start.items()}
        self.anchor = start

    @property
    def trainer(self) -> Any:
        if self._trainer is None:
            from promptscout.searchers.prompt_tuning.training import SoftTrainer

            train = self.context.task.train
            self._trainer = SoftTrainer(
                self._model(),
                self.training_texts(),
                [int(e.label) for e in train],
                self.base.label_words,
                lr=self.config.learning_rate,
                l2=self.config.l2,
                batch=self.config.train_batch,
            )
        return self._trainer

    def _train_epoch(self) -> None:
        assert self.tensors is not None and self.anchor is not None
        # Each epoch's order depends only on the seed and the epoch: nothing to save for resume.
        rng = np.random.default_rng(np.random.SeedSequence([self.context.seed, self.epoch]))
        order = [int(i) for i in rng.permutation(len(self.context.task.train))]
        self.tensors, self.adam, loss = self.trainer.epoch(
            self.tensors, self.anchor, self.adam, order
        )
        self.losses.append(loss)
        self.epoch += 1

    # -- ask / tell --------------------------------------------------------------------------

    def ask(self, n: int) -> list[Prompt]:
        if self._exhausted or n < 1:
            return []
        if self.tensors is None:
            self._start()
        for _ in range(self.config.epochs_per_ask):
            self._train_epoch()
        assert self.tensors is not None
        tensors = {k: v.copy() for k, v in self.tensors.items()}
        from promptscout.searchers.prompt_tuning.training import nearest_tokens

        _, nearest = nearest_tokens(self._model(), tensors[PREFIX])
        metadata = {
            "epoch": self.epoch,
            "vectors": int(tensors[PREFIX].shape[0]),
            "parametric": self.config.parametric,
            "train_loss": round(self.losses[-1], 6),
            "nearest_tokens": nearest,
        }
        prompts = [self._offer(tensors, metadata)]
        projected = self._projection(nearest, prompts[0].soft)
        if projected is not None and n > 1:
            prompts.append(projected)
        return prompts

    def _projection(self, nearest: str, digest: str) -> Prompt | None:
        """The discrete prompt ``nearest tokens + template`` (None when off or unusable)."""
        if not self.config.project:
            return None
        text = nearest.replace("{", "{{").replace("}", "}}").replace("[T]", "[ T]")
        try:
            return Prompt(
                text + self.base.template,
                self.base.label_words,
                metadata={"projection_of": digest, "epoch": self.epoch},
            )
        except PromptscoutError:
            return None

    # -- state -------------------------------------------------------------------------------

    def save(self) -> dict[str, Any]:
        def pack(tensors: Mapping[str, np.ndarray] | None) -> dict[str, Any] | None:
            return None if tensors is None else {k: pack_array(v) for k, v in tensors.items()}

        return {
            "tensors": pack(self.tensors),
            "anchor": pack(self.anchor),
            "adam": {
                "step": self.adam["step"],
                "m": pack(self.adam["m"]),
                "v": pack(self.adam["v"]),
            },
            **self.progress(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        def unpack(data: Mapping[str, Any] | None) -> dict[str, np.ndarray] | None:
            return None if data is None else {k: unpack_array(v) for k, v in data.items()}

        self.tensors = unpack(state["tensors"])
        self.anchor = unpack(state["anchor"])
        adam = state["adam"]
        self.adam = {"step": int(adam["step"]), "m": unpack(adam["m"]), "v": unpack(adam["v"])}
        self.restore_progress(state)
        self._offered = {}
