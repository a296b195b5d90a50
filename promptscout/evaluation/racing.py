"""Racing: score candidates on growing minibatches and stop the ones clearly behind.

Candidates are first scored on a small minibatch of the search split; at each stage a candidate
is compared with the incumbent (the best candidate scored on the whole split so far) on exactly
the same examples, using the incumbent's stored per-example outputs. A candidate whose paired
advantage is below zero with confidence (``mean + z * standard error < 0``) stops there;
the rest go on to the next, larger stage, and the last stage is the whole split. Per-example
terms are the ranking score of each example on its own: exactly the mean's terms for accuracy and
cross-entropy, a heuristic for non-decomposable objectives such as macro-F1.

Stages take a fixed, seeded permutation of the split, so resuming sees the same minibatches, and
the score cache means examples scored at an earlier stage are never scored again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from promptscout.evaluation.base import Evaluation
from promptscout.evaluation.outcome import Outcome, Status
from promptscout.objectives import Objective, ObjectiveInput, Ranking
from promptscout.options import OptionError, option, require_non_negative
from promptscout.prompts import Prompt
from promptscout.tasks import Task


@dataclass
class RacingConfig:
    """Racing options (the ``[racing]`` table of a campaign file): candidates are scored on
    minibatches of ``first``, ``first * factor``, ... examples, then the whole search split."""

    enabled: bool = option(True, help="Race candidates on growing minibatches (on by default).")
    first: int = option(8, help="Examples in the first minibatch.")
    factor: float = option(2.0, help="Each stage has factor times the examples of the one before.")
    z: float = option(
        1.0,
        help="Stop a candidate when mean + z * stderr of its paired advantage < 0 "
        "(larger stops fewer; 1.0 is about 84% one-sided).",
    )

    def __post_init__(self) -> None:
        if self.first < 2:
            raise OptionError("first", f"must be at least 2, got {self.first}")
        if self.factor <= 1:
            raise OptionError("factor", f"must be above 1, got {self.factor}")
        require_non_negative(self, ["z"])


def race_stages(config: RacingConfig, split_ids: Sequence[str], seed: int) -> list[tuple[str, ...]]:
    """Example ids of each stage: nested seeded minibatches, the last being ``split_ids`` as is."""
    ids = tuple(split_ids)
    if not config.enabled:
        return [ids]
    order = np.random.default_rng(seed).permutation(len(ids))
    stages, size = [], config.first
    while size < len(ids):
        stages.append(tuple(ids[i] for i in sorted(order[:size])))
        size = max(size + 1, int(math.ceil(size * config.factor)))
    return [*stages, ids]


class PairedComparison:
    """Decides whether a candidate is clearly behind the incumbent on the same examples."""

    def __init__(
        self, task: Task, objectives: Sequence[Objective], ranking: Ranking, z: float
    ) -> None:
        self.task = task
        self.objectives = [o for o in objectives if task.kind in o.task_kinds]
        self.ranking = ranking
        self.z = z

    def per_example(self, prompt: Prompt, evaluation: Evaluation, ids: Sequence[str]) -> np.ndarray:
        """The ranking score of each example of ``ids`` on its own, from stored outputs."""
        position = {example_id: i for i, example_id in enumerate(evaluation.example_ids)}
        scores = []
        for example_id in ids:
            output = evaluation.outputs[position[example_id]]
            outputs = np.array([output]) if self.task.kind == "classification" else [output]
            data = ObjectiveInput(
                self.task,
                [self.task.example(example_id)],
                outputs,
                prompt,
                evaluation.prompt_tokens,
            )
            scores.append(self.ranking.score({o.name: o(data) for o in self.objectives}))
        return np.array(scores)

    def clearly_behind(self, candidate: np.ndarray, incumbent: np.ndarray) -> bool:
        """True when the candidate's mean advantage is below zero with confidence ``z``."""
        diff = candidate - incumbent
        if not np.all(np.isfinite(diff)):
            return bool(np.any(np.isneginf(candidate)))
        n = len(diff)
        spread = diff.std(ddof=1) / math.sqrt(n) if n > 1 else math.inf
        return bool(diff.mean() + self.z * spread < 0)


Lookup = Callable[[Prompt, tuple[str, ...]], "Evaluation | None"]
"""The stored evaluation of a prompt on exactly these search examples, or None."""
Score = Callable[[list[Prompt], tuple[str, ...]], Iterator[Evaluation]]
"""Scores prompts on these search examples, yielding evaluations as they complete."""
Record = Callable[[Prompt, Evaluation], None]
"""Keeps a new evaluation (its ``examples`` is the stage's cost); called in prompt order."""


class Race:
    """Scores a batch of candidates stage by stage and decides each one's :class:`Outcome`.

    At every stage but the last, a candidate clearly behind the incumbent on the stage's examples
    stops there (:class:`Status.STOPPED`); one that fails stops at once
    (:class:`Status.FAILED`); the rest reach the whole split (:class:`Status.COMPLETE`). Without
    an incumbent every candidate that scores goes to the whole split.

    Evaluations already stored (same prompt, same examples) are reused at no cost, which makes a
    resumed batch replay the decisions of the interrupted one.

    Args:
        stages: The example ids of each stage (:func:`race_stages`); the last is the whole split.
        comparison: Decides "clearly behind" on the same examples.
    """

    def __init__(self, stages: Sequence[tuple[str, ...]], comparison: PairedComparison) -> None:
        self.stages = [tuple(s) for s in stages]
        self.comparison = comparison
        self.split_ids = self.stages[-1]

    def run(
        self,
        prompts: Sequence[Prompt],
        incumbent: tuple[Prompt, Evaluation] | None,
        lookup: Lookup,
        score: Score,
        record: Record,
    ) -> list[Outcome]:
        """Race ``prompts`` against ``incumbent``; their outcomes, in prompt order."""
        results: dict[str, Evaluation] = {}
        remaining: list[Prompt] = list(prompts)
        covered: tuple[str, ...] = ()
        for stage_ids in self.stages:
            # What a stage costs: the examples earlier stages of this race did not cover. It is
            # what the model reads (earlier outputs come from the score cache), but derived from
            # the stages alone, so a resumed campaign spends exactly what an uninterrupted one does.
            cost = len(set(stage_ids) - set(covered))
            covered = stage_ids
            todo = []
            for prompt in remaining:
                found = lookup(prompt, stage_ids)
                if found is None:
                    todo.append(prompt)
                else:
                    results[prompt.key] = found
            # Recorded in prompt order, whatever order the evaluator finishes them in (it
            # groups prompts by label words): the store then holds a batch's new prompts in
            # the same order whether or not a resumed campaign had some of them already, and
            # the leaderboard's ties (broken by store order) stay as in an uninterrupted run.
            # What waits for an earlier prompt is in the score cache, so a kill loses no work.
            waiting: dict[str, Evaluation] = {}
            next_up = 0
            for evaluation in score(todo, stage_ids) if todo else ():
                waiting[evaluation.prompt_key] = dataclasses.replace(evaluation, examples=cost)
                while next_up < len(todo) and todo[next_up].key in waiting:
                    prompt = todo[next_up]
                    results[prompt.key] = waiting.pop(prompt.key)
                    record(prompt, results[prompt.key])
                    next_up += 1
            by_key = {p.key: p for p in todo}
            for key, evaluation in waiting.items():  # after a prompt the evaluator never gave
                results[key] = evaluation
                record(by_key[key], evaluation)
            if incumbent is not None and stage_ids != self.split_ids:
                remaining = [
                    p
                    for p in remaining
                    if not self._behind(p, results[p.key], incumbent, stage_ids)
                ]
            else:
                remaining = [p for p in remaining if results[p.key].ok]
        return [self.outcome(p, results[p.key]) for p in prompts]

    def outcome(self, prompt: Prompt, evaluation: Evaluation) -> Outcome:
        """The outcome of a prompt whose last evaluation of this race is ``evaluation``."""
        score = self.comparison.ranking.score(evaluation.objectives) if evaluation.ok else None
        if score is None or not math.isfinite(score):
            return Outcome(prompt, evaluation, Status.FAILED, 0.0, float("-inf"))
        scored = len(evaluation.example_ids)
        full = evaluation.example_ids == self.split_ids
        status = Status.COMPLETE if full else Status.STOPPED
        return Outcome(prompt, evaluation, status, min(1.0, scored / len(self.split_ids)), score)

    def _behind(
        self,
        prompt: Prompt,
        evaluation: Evaluation,
        incumbent: tuple[Prompt, Evaluation],
        stage_ids: tuple[str, ...],
    ) -> bool:
        if not evaluation.ok:
            return True
        mine = self.comparison.per_example(prompt, evaluation, stage_ids)
        theirs = self.comparison.per_example(*incumbent, stage_ids)
        return self.comparison.clearly_behind(mine, theirs)

    @staticmethod
    def leader(outcomes: Sequence[Outcome], incumbent: tuple[Prompt, Evaluation] | None,
               ranking: Ranking) -> tuple[Prompt, Evaluation] | None:  # fmt: skip
        """The incumbent after a batch: the best candidate scored on the whole split (the
        earlier incumbent keeps its place on a tie)."""
        best = incumbent
        best_score = ranking.score(incumbent[1].objectives) if incumbent else float("-inf")
        for outcome in outcomes:
            if outcome.complete and outcome.score > best_score:
                best, best_score = (outcome.prompt, outcome.evaluation), outcome.score
        return best
