"""The searcher contract: ask for prompts, be told their outcomes, resume from saved state."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.evaluation.outcome import Outcome, Status
from promptscout.objectives import MAXIMIZE, Ranking
from promptscout.options import OptionError, option
from promptscout.prompts import Prompt

if TYPE_CHECKING:
    from promptscout.model import LanguageModel
    from promptscout.tasks import Task


@dataclass
class SearcherConfig:
    """Options every searcher has; subclasses add their own fields, each declared with
    :func:`~promptscout.options.option` (its type, default and help line are what the campaign
    file accepts and what ``promptscout plugins`` and the README's options reference show).
    ``__post_init__`` raises :class:`~promptscout.options.OptionError` naming the bad option."""

    name: str = option(
        "", help="The searcher's id in the store and leaderboard (default: its type)."
    )
    batch_size: int = option(8, help="Prompts asked for per round.")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise OptionError("batch_size", f"must be at least 1, got {self.batch_size}")

    def reads_internals(self) -> bool:
        """Whether these options need the model's internals (label-word search, a learned
        verbalizer), which only in-process models give."""
        return False

    def needs_local_evaluator(self) -> tuple[str, str] | None:
        """The option whose prompts only the local evaluator can score, and why (e.g.
        nearest-neighbour demonstrations: it embeds the inputs with the model's hidden states);
        None when any evaluator can. A campaign on the Ray evaluator refuses such options."""
        return None

    def uses_proposed_words(self, words: Sequence[str], context: SearchContext) -> bool:
        """Whether ``words`` hold one these options picked with the training labels."""
        return False

    def label_probe_ids(self, context: SearchContext) -> tuple[str, ...]:
        """The training examples (ids) these options picked label words with; a prompt using
        such words notes them as read (``train_read``): selection validates it on the rest."""
        return ()


@dataclass(frozen=True)
class SearchContext:
    """What a searcher knows about the campaign.

    Attributes:
        task: The task (searchers may read ``train``; ``dev`` scores come through ``tell``, and
            ``test`` must never be looked at).
        label_words: The campaign's label words, one per class.
        seed: Seed for this searcher (the campaign seed mixed with the searcher's position).
        ranking: How the campaign ranks candidates; searchers maximise :meth:`score`.
        store_path: The campaign store's file, next to which a searcher may keep its own files
            (e.g. the Bayesian searcher's Optuna study); None outside a campaign.
        campaign: The campaign's name.
        model_provider: Returns the campaign's language model in this process, loading it on
            first call (the local evaluator shares the same instance). White-box searchers
            (gradients, soft prompts, policies) call :meth:`model`; None where no model is
            available (e.g. unit tests of black-box searchers).
        proposer_provider: Returns the ``[proposer]`` model (None: :meth:`model` writes).
    """

    task: Task
    label_words: tuple[str, ...]
    seed: int
    ranking: Ranking = Ranking((("accuracy", MAXIMIZE),))
    store_path: str | None = None
    campaign: str = ""
    model_provider: Callable[[], LanguageModel] | None = None
    proposer_provider: Callable[[], LanguageModel] | None = None

    def model(self) -> LanguageModel:
        """The campaign's language model (white-box access for gradient-based searchers)."""
        if self.model_provider is None:
            raise PromptscoutError(
                "this searcher needs the language model, but the campaign gave it none"
            )
        return self.model_provider()

    def proposer(self) -> LanguageModel:
        """The model that writes prompt text (the campaign's ``[proposer]``, by default its
        own model): for searchers that write with a language model."""
        if self.proposer_provider is not None:
            return self.proposer_provider()
        return self.model()

    def score(self, evaluation: Evaluation) -> float:
        """The searcher-facing score of an evaluation: larger is better, failures are -inf."""
        return self.ranking.score(evaluation.objectives) if evaluation.ok else float("-inf")

    def outcome(
        self, prompt: Prompt, evaluation: Evaluation, search_size: int | None = None
    ) -> Outcome:
        """The :class:`Outcome` of ``prompt``'s last search-split evaluation.

        Complete when it covers ``search_size`` examples (default: the whole split it was scored
        on), stopped early when fewer, failed when it has an error or no finite score. The
        campaign passes its search split's size; tests and tools build outcomes with this too.
        """
        score = self.score(evaluation)
        if not evaluation.ok or not math.isfinite(score):
            return Outcome(prompt, evaluation, Status.FAILED, 0.0, float("-inf"))
        if search_size is None:
            try:
                search_size = len(self.task.split(evaluation.split))
            except PromptscoutError:  # a split the task lacks: what was scored is all of it
                search_size = len(evaluation.example_ids)
        scored = len(evaluation.example_ids)
        status = Status.COMPLETE if scored >= search_size else Status.STOPPED
        return Outcome(prompt, evaluation, status, min(1.0, scored / max(search_size, 1)), score)


@dataclass(frozen=True)
class Curve:
    """A training curve a searcher declares for the report (:meth:`Searcher.curves`)."""

    points: list[tuple[float, float]]
    x: str = "step"
    y: str = "value"
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"points": [list(p) for p in self.points], "x": self.x, "y": self.y,
                "title": self.title}  # fmt: skip


class Searcher(ABC):
    """Proposes prompts and learns from their outcomes.

    What a searcher implements:
        * ``ask(n)`` returns up to ``n`` prompts (fewer, or none, when the searcher has nothing
          new to offer; :attr:`exhausted` then tells whether it ever will).
        * ``tell(outcomes)`` receives one :class:`Outcome` per prompt it asked for, in ask
          order, with the racing status the campaign decided. Prompts the campaign had scored
          before are told from the store, so duplicates cost nothing.
        * ``save()`` returns JSON-ready data from which ``restore`` rebuilds the searcher
          exactly; deterministic given :attr:`SearchContext.seed` and the ``tell`` calls.
        * Optional reporting hooks: :meth:`curves` (training curves the report draws),
          :meth:`notes` (plain data about its own work) and :attr:`best_prompt` (what the
          searcher itself considers its best so far).

    What the base class owns (the campaign calls these):
        * :meth:`propose`: ``ask`` with every prompt stamped with the searcher's name;
        * :meth:`state` / :meth:`load_state`: ``save``/``restore`` with the state version
          (:attr:`state_version`) written and checked in one place;
        * :meth:`report`: the reporting hooks as plain data for the store.

    Subclasses set ``type_name`` and ``config_class`` and are registered with
    :func:`promptscout.searchers.register_searcher`.
    """

    type_name: ClassVar[str]
    config_class: ClassVar[type[SearcherConfig]] = SearcherConfig
    state_version: ClassVar[int] = 1
    reads_train_labels: ClassVar[bool] = False  # trained on the training examples
    best_so_far: BestSoFar | None = None  # set by searchers that keep their own best-so-far

    def __init__(self, config: SearcherConfig, context: SearchContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def create(cls, config: SearcherConfig, context: SearchContext) -> Searcher:
        """The searcher these options build (:func:`promptscout.searchers.create_searcher`
        calls it): this class by default; a type may build another class for some options."""
        return cls(config, context)

    @property
    def name(self) -> str:
        return self.config.name or self.type_name

    # -- what a searcher implements ----------------------------------------------------------

    @abstractmethod
    def ask(self, n: int) -> list[Prompt]:
        """Up to ``n`` prompts to evaluate next."""

    def tell(self, outcomes: Sequence[Outcome]) -> None:  # noqa: B027
        """Learn from the outcomes of asked prompts (searchers that do not learn ignore this)."""

    @property
    def exhausted(self) -> bool:
        """True when ``ask`` will never return anything new."""
        return False

    def check(self) -> None:  # noqa: B027
        """Refuse what these options cannot do with the campaign's model, before the campaign
        runs anything (raise :class:`PromptscoutError`: one error line); nothing by default.
        The campaign calls it once, after restoring any saved state."""

    def soft_tensors(self, digest: str) -> dict[str, Any] | None:
        """The tensors (name -> float32 NumPy array, see :mod:`promptscout.soft_tensors`) of a
        soft prompt this searcher's latest ``ask`` returned, by its :attr:`Prompt.soft` digest.

        The campaign calls it right after ``ask`` for every soft prompt whose tensors its store
        lacks, and keeps them there; searchers that propose no soft prompts return None.
        """
        return None

    @abstractmethod
    def save(self) -> dict[str, Any]:
        """JSON-ready state for :meth:`restore` (the base class adds the version)."""

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild the searcher from what :meth:`save` returned."""

    @property
    def white_box(self) -> bool:
        """Whether this searcher needs the model's internals (gradients, hidden states, the
        full next-token distribution), which only in-process models give; a campaign on a served
        model refuses it at start."""
        return self.reads_train_labels or self.config.reads_internals()

    def shaped_by_train(self, prompt: Prompt) -> bool:
        """Whether ``prompt`` was shaped by all the training labels beyond the demonstrations it
        shows (a searcher trained on them): its scores on the training examples are then no
        held-out evidence for the campaign's selection. :meth:`propose` stamps such prompts'
        metadata with ``train_labels``. (Label words picked with part of them are noted as
        ``train_read`` instead: the rest stays evidence.)"""
        return self.reads_train_labels

    def curves(self) -> list[Curve]:
        """Training curves for the report (none by default)."""
        return []

    def notes(self) -> dict[str, Any]:
        """Plain data about the searcher's own work for the report, by topic (e.g. a writer's
        ``"writing"``: its proposer's calls, tokens, seconds and dropped proposals); none by
        default."""
        return {}

    def committee(self) -> list[str]:
        """Keys of proposals to be pooled as one candidate at the campaign's end, their class
        probabilities averaged: members trained alike that differ only by their seeds (none by
        default)."""
        return []

    @property
    def best_prompt(self) -> Prompt | None:
        """The searcher's own pick so far, if it keeps one in :attr:`best_so_far` (the campaign
        ranks all prompts itself; this is the best outcome the searcher was told about)."""
        return self.best_so_far.prompt if self.best_so_far is not None else None

    # -- what the base class owns ------------------------------------------------------------

    def propose(self, n: int) -> list[Prompt]:
        """``ask(n)`` without repeats, each prompt's metadata stamped with this searcher's name
        (and ``train_labels`` when :meth:`shaped_by_train`, or the training examples its label
        words were picked with as ``train_read``)."""
        unique: dict[str, Prompt] = {}
        for prompt in self.ask(n):
            if prompt.key not in unique:
                metadata = {k: v for k, v in prompt.metadata.items() if k != "searcher"}
                if self.shaped_by_train(prompt):
                    metadata["train_labels"] = True
                elif self.config.uses_proposed_words(prompt.label_words, self.context):
                    read = {str(i) for i in metadata.get("train_read") or ()}
                    read |= set(self.config.label_probe_ids(self.context))
                    metadata["train_read"] = sorted(read)
                unique[prompt.key] = replace(prompt, metadata={"searcher": self.name, **metadata})
        return list(unique.values())

    def state(self) -> dict[str, Any]:
        """The saved state: :meth:`save`'s data with the state version."""
        return {"version": self.state_version, **self.save()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`'s output, refusing a state another version wrote."""
        version = state.get("version")
        if version != self.state_version:
            raise PromptscoutError(
                f"{self.type_name} searcher '{self.name}': saved state version {version} is not "
                f"{self.state_version}; start a new campaign"
            )
        self.restore({k: v for k, v in state.items() if k != "version"})

    def report(self) -> dict[str, Any]:
        """The reporting hooks as plain data (the campaign stores it after every turn)."""
        best, notes = self.best_prompt, self.notes()
        return {
            "curves": [c.to_dict() for c in self.curves()],
            "best": best.to_dict() if best is not None else None,
            **({"notes": notes} if notes else {}),
        }


class BestSoFar:
    """The best prompt a searcher was told about.

    A prompt scored on more search examples beats one that racing stopped earlier (partial
    scores on 8 easy examples are not comparable with full ones); among equals, the higher
    score wins. Failures count as scored on no examples. :attr:`record` is plain data for the
    searcher's saved state.
    """

    def __init__(self, record: dict[str, Any] | None = None) -> None:
        self.record = record

    def update(self, outcome: Outcome) -> None:
        best = self.record
        if best is not None and (outcome.examples, outcome.score) <= (
            best["examples"],
            best["score"],
        ):
            return
        self.record = {"key": outcome.key, "examples": outcome.examples,
                       "score": outcome.score, "prompt": outcome.prompt.to_dict()}  # fmt: skip

    @property
    def prompt(self) -> Prompt | None:
        return Prompt.from_dict(self.record["prompt"]) if self.record else None
