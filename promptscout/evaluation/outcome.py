"""What the campaign tells a searcher about each prompt it asked for: the racing outcome."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from promptscout.evaluation.base import Evaluation
from promptscout.prompts import Prompt


class Status(str, Enum):
    """What racing decided about a prompt the searcher asked for."""

    COMPLETE = "complete"  # scored on the whole search split
    STOPPED = "stopped"  # stopped early on a minibatch: clearly behind the incumbent
    FAILED = "failed"  # could not be scored (or its score is not a number)


@dataclass(frozen=True)
class Outcome:
    """One asked prompt as the campaign tells it back: the way Optuna's ``after_trial`` receives
    a trial's state, searchers receive what racing decided instead of working it out.

    Attributes:
        prompt: The prompt the searcher asked for.
        evaluation: Its last evaluation on the search split (the deepest racing stage reached).
        status: :class:`Status`: complete, stopped early, or failed.
        fraction: The share of the search split it was scored on (0 when failed).
        score: The searcher-facing score (:meth:`SearchContext.score`: larger is better,
            ``-inf`` when failed); on the scored examples only when stopped early.
    """

    prompt: Prompt
    evaluation: Evaluation
    status: Status
    fraction: float
    score: float

    @property
    def key(self) -> str:
        return self.prompt.key

    @property
    def complete(self) -> bool:
        return self.status is Status.COMPLETE

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    @property
    def examples(self) -> int:
        """Search examples it was scored on (0 when failed)."""
        return 0 if self.failed else len(self.evaluation.example_ids)
