"""The evaluation record and the evaluator contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from promptscout.prompts import Prompt

ProgressCallback = Callable[[int], None]


@dataclass
class Evaluation:
    """One prompt scored on some examples of one split.

    Attributes:
        prompt_key: :attr:`Prompt.key` of the scored prompt.
        split: ``"train"``, ``"dev"`` or ``"test"``.
        example_ids: The scored examples, in output order.
        outputs: Per example: class log-probabilities (classification) or generated text.
        objectives: Objective name to value.
        examples: Examples the model read for this evaluation (the budget's unit); outputs taken
            from the score cache are not counted.
        tokens: Tokens forwarded through the model.
        seconds: Scoring time.
        prompt_tokens: Length of the prompt's own text in model tokens (instruction, template,
            demonstrations), for length objectives.
        error: Why the prompt could not be scored, or None. Failed evaluations have no
            objective values and rank last.
        completion_tokens: Tokens a served model wrote back (its ``usage``), for cost; ``tokens``
            holds the prompt tokens it read.
    """

    prompt_key: str
    split: str
    example_ids: tuple[str, ...]
    outputs: list[Any] = field(default_factory=list)
    objectives: dict[str, float] = field(default_factory=dict)
    examples: int = 0
    tokens: int = 0
    seconds: float = 0.0
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["example_ids"] = list(self.example_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        return cls(**{**data, "example_ids": tuple(data["example_ids"])})


class Evaluator(ABC):
    """Scores prompts on a task's examples.

    Implementations must give the same numbers for the same prompts and examples, however the
    work is split. Only plain data (prompts, ids, evaluations) crosses process boundaries.
    """

    @property
    def fingerprint(self) -> str | None:
        """Identity of the model behind the scores (stores refuse to mix models)."""
        return None

    @abstractmethod
    def iter_evaluate(
        self,
        prompts: Sequence[Prompt],
        split: str,
        example_ids: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Iterator[Evaluation]:
        """Yield one :class:`Evaluation` per prompt as soon as it is complete (in any order).

        Args:
            prompts: Distinct prompts to score.
            split: The split the examples come from.
            example_ids: The examples to score; all of the split when None.
            progress: Called with the number of examples just scored.
        """

    def evaluate(
        self,
        prompts: Sequence[Prompt],
        split: str,
        example_ids: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[Evaluation]:
        """Score ``prompts``; results in the order of ``prompts``."""
        results = self.iter_evaluate(prompts, split, example_ids, progress)
        by_key = {e.prompt_key: e for e in results}
        return [by_key[p.key] for p in prompts]

    @property
    def parallelism(self) -> int:
        """How many prompts or chunks it scores at once (the campaign asks for at least as many
        prompts per batch, so every worker has work)."""
        return 1

    def close(self) -> None:  # noqa: B027 - optional hook, most evaluators hold nothing
        """Release workers and memory (no-op by default)."""
