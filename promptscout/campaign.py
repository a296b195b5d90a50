"""The campaign loop: searchers ask, the evaluator scores, the store keeps, searchers are told.

Resuming is the same loop started from the store: searcher states are restored, prompts a
searcher asks for again that are already scored are told from the store at no cost, and the
budget counts what the store says was spent. So a campaign killed at any point and resumed ends
where an uninterrupted one would.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from promptscout.config import CampaignConfig
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator
from promptscout.leaderboard import LeaderboardEntry, build_leaderboard, export_payload
from promptscout.objectives import Objective, Ranking, resolve_objective
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, Searcher, create_searcher
from promptscout.store import Store
from promptscout.tasks import Task, load_task

# Rounds in a row in which no searcher proposes anything unscored before the campaign stops.
IDLE_ROUNDS = 3


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class CampaignResult:
    """What a finished run leaves: why it stopped, what it spent, and the ranked candidates."""

    stop_reason: str
    examples_scored: int
    evaluations: int
    leaderboard: list[LeaderboardEntry]


def searcher_seed(campaign_seed: int, position: int) -> int:
    """Independent, reproducible seeds for each searcher of a campaign."""
    return int(np.random.SeedSequence([campaign_seed, position]).generate_state(1)[0])


def campaign_task(config: CampaignConfig) -> Task:
    """The task a campaign config names, with its label words."""
    words = config.task.label_words or None
    return load_task(config.task.spec, seed=config.task.split_seed, label_words=words)


def campaign_objectives(config: CampaignConfig, task: Task) -> list[Objective]:
    objectives = [resolve_objective(name) for name in config.objective.names]
    for objective in objectives:
        if task.kind not in objective.task_kinds:
            raise PromptscoutError(
                f"{config.source}: [objective] name: '{objective.name}' does not apply to "
                f"{task.kind} task '{task.name}'"
            )
    return objectives


class Campaign:
    """One campaign bound to its store.

    Args:
        config: The validated campaign file.
        store: The open (writable) store; new or holding this campaign's earlier runs.
        evaluator_factory: Builds the evaluator from (task, objectives, config); the default
            loads the configured model and scores in-process.
        progress: Show progress bars on stderr.
    """

    def __init__(
        self,
        config: CampaignConfig,
        store: Store,
        evaluator_factory: Callable[[Task, list[Objective], CampaignConfig], Evaluator]
        | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.progress = progress
        self.task = campaign_task(config)
        self.objectives = campaign_objectives(config, self.task)
        self.ranking = Ranking.of(self.objectives, config.objective.weights)
        self.search_split = config.task.search_split
        self.search_ids = tuple(e.id for e in self.task.split(self.search_split))
        self._evaluator_factory = evaluator_factory or default_evaluator
        self._evaluator: Evaluator | None = None
        self.searchers = self._build_searchers()
        self._check_or_record_meta()

    # -- setup ------------------------------------------------------------------------------

    def _build_searchers(self) -> list[Searcher]:
        searchers = []
        for position, spec in enumerate(self.config.searchers):
            context = SearchContext(
                self.task,
                self.task.label_words,
                searcher_seed(self.config.seed, position),
                self.ranking,
            )
            try:
                searcher = create_searcher(spec.type, spec.options, context)
            except PromptscoutError as exc:
                where = f"{self.config.source}:{spec.line}" if spec.line else self.config.source
                raise PromptscoutError(f"{where}: [[searchers]] {spec.type}: {exc}") from None
            state = self.store.searcher_state(searcher.name)
            if state is not None:
                searcher.load_state(state)
            searchers.append(searcher)
        return searchers

    def _check_or_record_meta(self) -> None:
        stored = self.store.get_meta("config")
        if stored is None:
            self.store.set_meta("config", self.config.to_dict())
            self.store.set_meta("ranking", self.ranking.to_dict())
            self.store.set_meta("search_examples", list(self.search_ids))
            try:
                holdout = self.task.split(self.config.task.holdout_split)
            except PromptscoutError:  # no held-out data (e.g. dbpedia): finalists keep dev only
                holdout = ()
            self.store.set_meta("holdout_examples", [e.id for e in holdout])
            self.store.set_meta("label_words", list(self.task.label_words))
        elif stored["task"] != self.config.to_dict()["task"] or stored["model"]["name"] != (
            self.config.model.name
        ):
            raise PromptscoutError(
                f"store {self.store.path} belongs to a campaign with another task or model; "
                "use a new --store path"
            )

    @property
    def evaluator(self) -> Evaluator:
        """The evaluator, built on first use (loading the model takes time)."""
        if self._evaluator is None:
            self._evaluator = self._evaluator_factory(self.task, self.objectives, self.config)
            fingerprint = self._evaluator.fingerprint
            recorded = self.store.get_meta("fingerprint")
            if recorded is None:
                self.store.set_meta("fingerprint", fingerprint)
            elif fingerprint is not None and recorded != fingerprint:
                raise PromptscoutError(
                    f"store {self.store.path} was scored with a different model "
                    f"(fingerprint {recorded}, now {fingerprint}); use a new --store path"
                )
        return self._evaluator

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        """Search until the budget is spent or the searchers run dry, then finalise."""
        run_id = self.store.start_run()
        status = "failed"
        try:
            reason = self._search()
            self.finalize()
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.store.finish_run(run_id, status)
        self.store.set_meta("finished", True)
        self.store.set_meta("stop_reason", reason)
        return CampaignResult(
            reason,
            self.store.examples_scored(self.search_split),
            self.store.count_evaluations(),
            build_leaderboard(self.store),
        )

    def _budget_left(self, started: float, prior_seconds: float) -> tuple[int | None, bool]:
        """(examples left or None for unlimited, whether time is left)."""
        examples = self.config.budget.examples
        left = (
            None if examples is None else examples - self.store.examples_scored(self.search_split)
        )
        minutes = self.config.budget.minutes
        time_left = minutes is None or prior_seconds + time.time() - started < minutes * 60
        return left, time_left

    def _search(self) -> str:
        started, prior = time.time(), self.store.seconds_spent()
        per_prompt = len(self.search_ids)
        budget = self.config.budget.examples
        bar = tqdm(
            total=budget,
            initial=self.store.examples_scored(self.search_split),
            unit="ex",
            desc="search",
            disable=not self.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        idle = 0
        try:
            while True:
                active = [s for s in self.searchers if not s.exhausted]
                if not active:
                    return "every searcher has proposed all it can"
                progressed = False
                for searcher in active:
                    left, time_left = self._budget_left(started, prior)
                    if not time_left:
                        return "time budget spent"
                    if left is not None and left < per_prompt:
                        return "example budget spent"
                    n = searcher.config.batch_size
                    if left is not None:
                        n = min(n, left // per_prompt)
                    prompts = _unique(searcher.ask(n))
                    if not prompts:
                        continue
                    new = self._tell(searcher, prompts, bar)
                    progressed = progressed or new > 0
                idle = 0 if progressed else idle + 1
                if idle >= IDLE_ROUNDS:
                    return "searchers proposed nothing new"
        finally:
            bar.close()

    def _tell(self, searcher: Searcher, prompts: list[Prompt], bar: Any) -> int:
        """Score what is new, reuse what is stored, tell the searcher; returns prompts scored."""
        results: dict[str, Evaluation] = {}
        for prompt in prompts:
            found = self.store.find_evaluation(prompt.key, self.search_split, self.search_ids)
            if found is not None:
                results[prompt.key] = found
        todo = [p for p in prompts if p.key not in results]
        by_key = {p.key: p for p in todo}
        if todo:
            for evaluation in self.evaluator.iter_evaluate(
                todo, self.search_split, self.search_ids, progress=bar.update
            ):
                self.store.add_evaluation(by_key[evaluation.prompt_key], searcher.name, evaluation)
                results[evaluation.prompt_key] = evaluation
                if evaluation.error:
                    _log(f"candidate {evaluation.prompt_key} failed: {evaluation.error}")
        searcher.tell([(p, results[p.key]) for p in prompts])
        self.store.save_searcher_state(searcher.name, searcher.state())
        return len(todo)

    # -- the end ----------------------------------------------------------------------------

    def finalize(self) -> None:
        """Re-score the top candidates on the held-out split and write the export."""
        top_k = self.config.leaderboard.top_k
        holdout_split = self.config.task.holdout_split
        holdout_ids = self.store.get_meta("holdout_examples")
        finalists = [e for e in build_leaderboard(self.store, top=top_k) if e.test is None]
        if finalists and holdout_ids:
            prompts = [e.prompt for e in finalists]
            searchers = {e.prompt.key: e.searcher for e in finalists}
            total = len(prompts) * len(holdout_ids)
            _log(
                f"re-scoring the top {len(prompts)} on {holdout_split} "
                f"({len(holdout_ids)} held-out examples each)"
            )
            with tqdm(
                total=total,
                unit="ex",
                desc=holdout_split,
                disable=not self.progress,
                file=sys.stderr,
                dynamic_ncols=True,
            ) as bar:
                by_key = {p.key: p for p in prompts}
                for evaluation in self.evaluator.iter_evaluate(
                    prompts, holdout_split, holdout_ids, progress=bar.update
                ):
                    self.store.add_evaluation(
                        by_key[evaluation.prompt_key], searchers[evaluation.prompt_key], evaluation
                    )
        write_export(self.store, self.config.export_path, top_k or None)

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()


def _unique(prompts: Sequence[Prompt]) -> list[Prompt]:
    seen: dict[str, Prompt] = {}
    for prompt in prompts:
        seen.setdefault(prompt.key, prompt)
    return list(seen.values())


def default_evaluator(task: Task, objectives: list[Objective], config: CampaignConfig) -> Evaluator:
    """Load the configured model and score in this process."""
    from promptscout.evaluation.local import LocalEvaluator
    from promptscout.model import load_model

    model = load_model(
        config.model.name,
        dtype=config.model.dtype,
        device=config.model.device,
        batch_size=config.model.batch_size,
    )
    return LocalEvaluator(model, task, objectives)


def write_export(store: Store, path: Path, top: int | None) -> Path:
    """Write the export JSON of the ``top`` leaderboard rows (all when None)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = export_payload(store, build_leaderboard(store, top=top))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
