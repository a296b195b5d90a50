"""The searcher contract: ask for prompts, be told their scores, resume from saved state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.objectives import MAXIMIZE, Ranking
from promptscout.prompts import Prompt

if TYPE_CHECKING:
    from promptscout.model import LanguageModel
    from promptscout.tasks import Task


@dataclass
class SearcherConfig:
    """Options every searcher has; subclasses add their own fields.

    Attributes:
        name: The searcher's id in the store and leaderboard (default: its type).
        batch_size: Prompts asked for per round.
    """

    name: str = ""
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise PromptscoutError(f"batch_size must be at least 1, got {self.batch_size}")


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
    """

    task: Task
    label_words: tuple[str, ...]
    seed: int
    ranking: Ranking = Ranking((("accuracy", MAXIMIZE),))
    store_path: str | None = None
    campaign: str = ""
    model_provider: Callable[[], LanguageModel] | None = None

    def model(self) -> LanguageModel:
        """The campaign's language model (white-box access for gradient-based searchers)."""
        if self.model_provider is None:
            raise PromptscoutError(
                "this searcher needs the language model, but the campaign gave it none"
            )
        return self.model_provider()

    def score(self, evaluation: Evaluation) -> float:
        """The searcher-facing score of an evaluation: larger is better, failures are -inf."""
        return self.ranking.score(evaluation.objectives) if evaluation.ok else float("-inf")


class Searcher(ABC):
    """Proposes prompts and learns from their scores.

    Contract:
        * ``ask(n)`` returns up to ``n`` prompts (fewer, or none, when the searcher has nothing
          new to offer; :attr:`exhausted` then tells whether it ever will).
        * ``tell(results)`` receives ``(prompt, evaluation)`` pairs for prompts it asked for, in
          ask order. Prompts the campaign had scored before are told from the store, so
          duplicates cost nothing.
        * Deterministic given :attr:`SearchContext.seed` and the sequence of ``tell`` calls.
        * ``state()`` returns JSON-ready data from which ``load_state`` restores the searcher
          exactly; the campaign saves it after every ``tell``.

    Subclasses set ``type_name`` and ``config_class`` and are registered with
    :func:`promptscout.searchers.register_searcher`.
    """

    type_name: ClassVar[str]
    config_class: ClassVar[type[SearcherConfig]] = SearcherConfig

    def __init__(self, config: SearcherConfig, context: SearchContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.config.name or self.type_name

    @abstractmethod
    def ask(self, n: int) -> list[Prompt]:
        """Up to ``n`` prompts to evaluate next."""

    def tell(self, results: Sequence[tuple[Prompt, Evaluation]]) -> None:  # noqa: B027
        """Learn from scored prompts (searchers that do not learn ignore this)."""

    @property
    def exhausted(self) -> bool:
        """True when ``ask`` will never return anything new."""
        return False

    def soft_tensors(self, digest: str) -> dict[str, Any] | None:
        """The tensors (name -> float32 NumPy array, see :mod:`promptscout.soft`) of a soft
        prompt this searcher's latest ``ask`` returned, by its :attr:`Prompt.soft` digest.

        The campaign calls it right after ``ask`` for every soft prompt whose tensors its store
        lacks, and keeps them there; searchers that propose no soft prompts return None.
        """
        return None

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """JSON-ready state for :meth:`load_state`."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""


def track_best(
    best: dict[str, Any] | None, prompt: Prompt, evaluation: Evaluation, context: SearchContext
) -> dict[str, Any] | None:
    """The better of ``best`` and this scored prompt, as a JSON-ready record.

    A prompt scored on more search examples beats one that racing stopped earlier (partial
    scores on 8 easy examples are not comparable with full ones); among equals, the higher
    :meth:`SearchContext.score` wins. Failures count as scored on no examples.

    Returns:
        ``best`` unchanged, or ``{"key", "examples", "score", "prompt"}`` for this prompt.
    """
    examples = len(evaluation.example_ids) if evaluation.ok else 0
    score = context.score(evaluation)
    if best is not None and (examples, score) <= (best["examples"], best["score"]):
        return best
    return {"key": prompt.key, "examples": examples, "score": score, "prompt": prompt.to_dict()}
