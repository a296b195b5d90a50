"""The soft-prompt searcher: trains the tensors, proposes them, stops early on dev (see the
package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt
from promptscout.searchers.base import Curve, Outcome, SearchContext, Searcher
from promptscout.searchers.prompt_tuning.config import SoftConfig
from promptscout.soft_tensors import FINAL_NORM, PREFIX, pack_array, tensors_digest, unpack_array


class SoftSearcher(Searcher):
    """Prompt tuning (optionally with the final norm) with early stopping on dev."""

    type_name = "soft"
    config_class = SoftConfig
    config: SoftConfig
    state_version = 1
    reads_train_labels = True

    def __init__(self, config: SoftConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        task = context.task
        if task.kind != "classification":
            raise PromptscoutError("the soft searcher needs a classification task")
        words = tuple(config.label_words) or tuple(context.label_words)
        self.base = Prompt(config.template, words)  # validates template and label words
        self.base.check_task(task)
        self._trainer: Any = None
        self._offered: dict[str, dict[str, np.ndarray]] = {}  # digest -> tensors, last ask
        # The training state (all of it in state()).
        self.tensors: dict[str, np.ndarray] | None = None
        self.anchor: dict[str, np.ndarray] | None = None
        self.adam: dict[str, Any] = {"step": 0, "m": {}, "v": {}}
        self.epoch = 0
        self.losses: list[float] = []
        self.asked: dict[str, int] = {}  # digest -> epoch, proposed and not yet told
        self.best: dict[str, Any] | None = None  # {"digest", "epoch", "ce": {example id: CE}}
        self.stale = 0  # proposals in a row that did not improve on the best
        self._exhausted = False

    # -- training ----------------------------------------------------------------------------

    def _model(self) -> Any:
        return self.context.model()

    def _start(self) -> None:
        """The starting tensors (needs the model: called on the first ask)."""
        from promptscout.searchers.prompt_tuning.training import final_norm_weights, init_prefix

        model = self._model()
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
                [self.base.render(e) for e in train],
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
        digest = tensors_digest(tensors)
        self._offered = {digest: tensors}
        self.asked[digest] = self.epoch
        from promptscout.searchers.prompt_tuning.training import nearest_tokens

        _, nearest = nearest_tokens(self._model(), tensors[PREFIX])
        metadata = {
            "epoch": self.epoch,
            "vectors": int(tensors[PREFIX].shape[0]),
            "parametric": self.config.parametric,
            "train_loss": round(self.losses[-1], 6),
            "nearest_tokens": nearest,
        }
        prompts = [
            Prompt(
                self.base.template,
                self.base.label_words,
                separator=self.base.separator,
                soft=digest,
                metadata=metadata,
            )
        ]
        projected = self._projection(nearest, digest)
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

    def soft_tensors(self, digest: str) -> dict[str, np.ndarray] | None:
        """The tensors of a soft prompt from the latest ask (the campaign stores them)."""
        return self._offered.get(digest)

    def _per_example_ce(self, outcome: Outcome) -> dict[str, float] | None:
        """Each scored example's cross-entropy of the gold class, from the told outputs."""
        evaluation = outcome.evaluation
        if outcome.failed or not evaluation.outputs:
            return None
        try:
            out = np.asarray(evaluation.outputs, dtype=np.float64)
            gold = [int(self.context.task.example(i).label) for i in evaluation.example_ids]
        except (KeyError, PromptscoutError, TypeError, ValueError):
            return None
        if out.ndim != 2 or out.shape[0] != len(gold):
            return None
        logp = out - np.logaddexp.reduce(out, axis=1, keepdims=True)
        ce = -logp[np.arange(len(gold)), gold]
        return dict(zip(evaluation.example_ids, (float(x) for x in ce), strict=True))

    def _improves(self, ce: dict[str, float]) -> bool:
        """Better than the best on the examples both were scored on (racing may have stopped
        this one on a minibatch); any candidate improves on nothing."""
        if self.best is None:
            return True
        shared = [i for i in ce if i in self.best["ce"]]
        if not shared:
            return True
        mine = float(np.mean([ce[i] for i in shared]))
        theirs = float(np.mean([self.best["ce"][i] for i in shared]))
        return mine < theirs

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            prompt = outcome.prompt
            epoch = self.asked.pop(prompt.soft, None) if prompt.soft else None
            if epoch is None:
                continue  # a projection, or not ours
            ce = self._per_example_ce(outcome)
            if ce is not None and self._improves(ce):
                merged = {**(self.best["ce"] if self.best else {}), **ce}
                self.best = {"digest": prompt.soft, "epoch": epoch, "ce": merged}
                self.stale = 0
            else:
                self.stale += 1
        if self.stale >= self.config.patience or self.epoch >= self.config.max_epochs:
            self._exhausted = True

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def curves(self) -> list[Curve]:
        """The reporting hook: the mean train loss of every epoch."""
        points = [(float(epoch + 1), loss) for epoch, loss in enumerate(self.losses)]
        return [Curve(points, "epoch", "train loss", f"{self.name}: training loss per epoch")]

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
            "epoch": self.epoch,
            "losses": list(self.losses),
            "asked": dict(self.asked),
            "best": self.best,
            "stale": self.stale,
            "exhausted": self._exhausted,
        }

    def restore(self, state: dict[str, Any]) -> None:
        def unpack(data: Mapping[str, Any] | None) -> dict[str, np.ndarray] | None:
            return None if data is None else {k: unpack_array(v) for k, v in data.items()}

        self.tensors = unpack(state["tensors"])
        self.anchor = unpack(state["anchor"])
        adam = state["adam"]
        self.adam = {"step": int(adam["step"]), "m": unpack(adam["m"]), "v": unpack(adam["v"])}
        self.epoch = int(state["epoch"])
        self.losses = [float(x) for x in state["losses"]]
        self.asked = {k: int(v) for k, v in state["asked"].items()}
        self.best = state["best"]
        self.stale = int(state["stale"])
        self._exhausted = bool(state["exhausted"])
        self._offered = {}
