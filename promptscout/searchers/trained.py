"""What every searcher that trains numbers by gradient descent shares: epochs, proposals, and
early stopping on the dev cross-entropy.

Each ``ask`` trains some epochs on the train split and proposes the current numbers as one
prompt (its ``soft`` field is their digest); ``tell`` gets its dev score. The best proposal so
far is the one with the lowest mean cross-entropy of the gold class on the examples both were
scored on (racing may stop a candidate on a minibatch); training stops after ``patience``
proposals in a row that do not improve on it, or after ``max_epochs``. The prompt-tuning
searcher (``soft``) and the PEFT family (``peft``) subclass :class:`TrainedSearcher`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.objectives.classification import gold_cross_entropy
from promptscout.prompts import Prompt
from promptscout.searchers.base import Curve, Outcome, Searcher
from promptscout.soft_tensors import tensors_digest


class TrainedSearcher(Searcher):
    """Early stopping and training curves for a searcher trained epoch by epoch.

    The config has ``template`` and ``label_words`` (the discrete part, :attr:`base`),
    ``patience`` and ``max_epochs``. Subclasses train in ``ask`` (adding each epoch's mean loss
    to :attr:`losses` and counting :attr:`epoch`), note each proposal's digest in
    and its tensors with :meth:`_offer`, and save :meth:`progress` with their own
    state.
    """

    reads_train_labels = True

    def __init__(self, config: Any, context: Any) -> None:
        super().__init__(config, context)
        task = context.task
        if task.kind != "classification":
            raise PromptscoutError(f"the {self.type_name} searcher needs a classification task")
        words = tuple(config.label_words) or tuple(context.label_words)
        self.base = Prompt(config.template, words)  # validates template and label words
        self.base.check_task(task)
        self._trainer: Any = None  # made on first use (it needs the model)
        self._offered: dict[str, dict[str, np.ndarray]] = {}  # digest -> tensors, last ask
        self.epoch = 0
        self.losses: list[float] = []
        self.asked: dict[str, int] = {}  # digest -> epoch, proposed and not yet told
        self.best: dict[str, Any] | None = None  # {"digest", "epoch", "ce": {example id: CE}}
        self.stale = 0  # proposals in a row that did not improve on the best
        self._exhausted = False
        self._neighbours: Any = None  # nearest-demonstration finder, made on first use

    def _offer(self, tensors: dict[str, np.ndarray], metadata: dict[str, Any]) -> Prompt:
        """The proposal of this round's ``tensors``: the discrete part with ``soft`` their
        digest, noted as asked at this epoch, the tensors kept for :meth:`soft_tensors`."""
        digest = tensors_digest(tensors)
        self._offered = {digest: tensors}
        self.asked[digest] = self.epoch
        return dataclasses.replace(self.base, soft=digest, metadata=metadata)

    def training_texts(self, base: Prompt | None = None) -> list[str]:
        """The texts the numbers are trained on: each training example as ``base`` (default:
        :attr:`base`) renders it, with the demonstrations scoring would show it: the fixed
        ``demos`` less the example itself (its own label next to it would teach copying), or its
        nearest other training examples (:mod:`promptscout.evaluation.neighbours`, by the
        campaign model's hidden states, as the local evaluator picks them)."""
        task, base = self.context.task, base or self.base
        train = list(task.train)
        if base.nearest_demos:
            from promptscout.evaluation.neighbours import Neighbours

            if self._neighbours is None:  # one per searcher: it embeds each input once
                self._neighbours = Neighbours(task, self.context.model().embed)
            shown = self._neighbours.demos(train, base.nearest_demos)
        else:
            fixed = [task.example(i) for i in base.demos]
            shown = [[d for d in fixed if d.id != e.id] for e in train]
        return [base.render(e, demos) for e, demos in zip(train, shown, strict=True)]

    def soft_tensors(self, digest: str) -> dict[str, np.ndarray] | None:
        """The tensors of a proposal from the latest ask (the campaign stores them)."""
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
        ce = gold_cross_entropy(out, gold)
        return dict(zip(evaluation.example_ids, (float(x) for x in ce), strict=True))

    def _improves(self, ce: dict[str, float]) -> bool:
        """Better than the best on the examples both were scored on; any candidate improves on
        nothing."""
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
                continue  # not one of the trained proposals (e.g. a projection)
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

    def progress(self) -> dict[str, Any]:
        """The early-stopping state as JSON-ready data (subclasses add it to :meth:`save`)."""
        return {
            "epoch": self.epoch,
            "losses": list(self.losses),
            "asked": dict(self.asked),
            "best": self.best,
            "stale": self.stale,
            "exhausted": self._exhausted,
        }

    def restore_progress(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`progress` returned."""
        self.epoch = int(state["epoch"])
        self.losses = [float(x) for x in state["losses"]]
        self.asked = {k: int(v) for k, v in state["asked"].items()}
        self.best = state["best"]
        self.stale = int(state["stale"])
        self._exhausted = bool(state["exhausted"])
