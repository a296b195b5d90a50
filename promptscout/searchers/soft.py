"""Soft prompts (prompt tuning): learned vectors before the input, trained by gradient descent.

The prompt the model reads is ``[E_P; E_X]``: ``vectors`` learned embeddings ``E_P`` followed by
the embeddings of the rendered discrete part (``template`` filled with the example; ``{text}`` by
default). The vectors start from the embeddings of ``init_text`` (or of random common tokens, or
random noise) and are trained with Adam on the class-normalised cross-entropy of the gold label
words over the task's *train* split, the model frozen. With ``parametric = "final_norm"`` the
final norm's weights (one vector of ``hidden`` numbers) are trained as well and travel with the
prompt: parametric prompt learning that keeps the "prompt" small.

Each ``ask`` trains ``epochs_per_ask`` epochs and proposes the current tensors as a
:class:`~promptscout.prompts.Prompt` whose ``soft`` field is their digest; the campaign takes the
tensors from :meth:`SoftSearcher.soft_tensors` into its store before scoring them. ``tell`` gets
the dev score: early stopping keeps the best tensors by dev cross-entropy and stops after
``patience`` epochs without improvement (or ``max_epochs``). Racing may stop a soft candidate on
a minibatch; it is then compared with the best on exactly the examples it was scored on.

With ``project = true`` every ask also proposes the discrete prompt made of each vector's nearest
vocabulary token (cosine) before the template, a readable (if usually weaker) relative.

Example:
    >>> from promptscout.model import load_model
    >>> from promptscout.searchers.base import SearchContext
    >>> from promptscout.searchers.soft import SoftConfig, SoftSearcher
    >>> from promptscout.tasks import load_task
    >>> task = load_task("sst-2")
    >>> model = load_model("smollm2-135m-instruct")  # doctest: +SKIP
    >>> context = SearchContext(task, ("negative", "positive"), 0, model_provider=lambda: model)
    >>> searcher = SoftSearcher(SoftConfig(vectors=8, template="Review: {text}\\nSentiment:"),
    ...                         context)  # doctest: +SKIP
    >>> (prompt,) = searcher.ask(1)  # one epoch over train  # doctest: +SKIP
    >>> searcher.soft_tensors(prompt.soft)["prefix"].shape  # doctest: +SKIP
    (8, 576)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.prompts import Prompt
from promptscout.searchers.base import SearchContext, Searcher, SearcherConfig
from promptscout.soft import (
    FINAL_NORM,
    INIT_MODES,
    PARAMETRIC_MODES,
    PREFIX,
    pack_array,
    tensors_digest,
    unpack_array,
)

STATE_VERSION = 1


@dataclass
class SoftConfig(SearcherConfig):
    """Options of the soft-prompt searcher.

    Attributes:
        template: The discrete part placed after the vectors, with ``{field}`` placeholders.
        label_words: One word per class (default: the campaign's label words).
        vectors: Number of learned vectors.
        init: ``"text"`` (embeddings of ``init_text``'s tokens, the rest as ``"vocab"``),
            ``"vocab"`` (embeddings of random common tokens) or ``"random"`` (noise of the
            embeddings' scale).
        init_text: The text whose token embeddings start the vectors (``init = "text"``).
        lr: Adam step size.
        l2: Weight of the squared distance of the trained tensors from where they started.
        train_batch: Training examples per optimiser step.
        epochs_per_ask: Epochs over the train split between two proposals.
        max_epochs: Stop after this many epochs.
        patience: Stop after this many proposals in a row that do not improve the dev
            cross-entropy.
        parametric: ``""`` (prompt tuning: the model frozen) or ``"final_norm"`` (the final
            norm's weights are trained too and belong to the prompt).
        project: Also propose each round's nearest-token discrete projection.
        batch_size: One soft prompt per ask (two with ``project``, which raises it to 2).
    """

    template: str = "{text}"
    label_words: list[str] = field(default_factory=list)
    vectors: int = 20
    init: str = "text"
    init_text: str = "Read the text and answer with the correct label."
    lr: float = 0.03
    l2: float = 0.0
    train_batch: int = 8
    epochs_per_ask: int = 1
    max_epochs: int = 30
    patience: int = 3
    parametric: str = ""
    project: bool = False
    batch_size: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vectors", "train_batch", "epochs_per_ask", "max_epochs", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise PromptscoutError(f"{name} must be a positive integer, got {value!r}")
        if self.init not in INIT_MODES:
            raise PromptscoutError(
                f"init must be one of {', '.join(INIT_MODES)}, got {self.init!r}"
            )
        if self.init == "text" and not self.init_text.strip():
            raise PromptscoutError("init = 'text' needs a non-empty init_text")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise PromptscoutError(f"lr must be a positive number, got {self.lr!r}")
        if not (self.l2 >= 0 and math.isfinite(self.l2)):
            raise PromptscoutError(f"l2 must be 0 or more, got {self.l2!r}")
        if self.project:
            self.batch_size = max(self.batch_size, 2)
        if self.parametric not in PARAMETRIC_MODES:
            raise PromptscoutError(
                f'parametric must be "" or "final_norm", got {self.parametric!r}'
            )


class SoftSearcher(Searcher):
    """Prompt tuning (optionally with the final norm) with early stopping on dev."""

    type_name = "soft"
    config_class = SoftConfig
    config: SoftConfig

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
        from promptscout.model.soft import final_norm_weights, init_prefix

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
            from promptscout.model.soft import SoftTrainer

            train = self.context.task.train
            self._trainer = SoftTrainer(
                self._model(),
                [self.base.render(e) for e in train],
                [int(e.label) for e in train],
                self.base.label_words,
                lr=self.config.lr,
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
        from promptscout.model.soft import nearest_tokens

        _, nearest = nearest_tokens(self._model(), tensors[PREFIX])
        metadata = {
            "searcher": self.name,
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
                metadata={"searcher": self.name, "projection_of": digest, "epoch": self.epoch},
            )
        except PromptscoutError:
            return None

    def soft_tensors(self, digest: str) -> dict[str, np.ndarray] | None:
        """The tensors of a soft prompt from the latest ask (the campaign stores them)."""
        return self._offered.get(digest)

    def _per_example_ce(self, evaluation: Evaluation) -> dict[str, float] | None:
        """Each scored example's cross-entropy of the gold class, from the told outputs."""
        if not evaluation.ok or not evaluation.outputs:
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

    def tell(self, results: Sequence[tuple[Prompt, Evaluation]]) -> None:
        for prompt, evaluation in results:
            epoch = self.asked.pop(prompt.soft, None) if prompt.soft else None
            if epoch is None:
                continue  # a projection, or not ours
            ce = self._per_example_ce(evaluation)
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

    # -- state -------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        def pack(tensors: Mapping[str, np.ndarray] | None) -> dict[str, Any] | None:
            return None if tensors is None else {k: pack_array(v) for k, v in tensors.items()}

        return {
            "version": STATE_VERSION,
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

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise PromptscoutError(
                f"soft searcher state version {state.get('version')} is not {STATE_VERSION}"
            )

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
