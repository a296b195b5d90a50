"""The campaign loop: searchers ask, the evaluator scores, the store keeps, searchers are told.

Resuming is the same loop started from the store: searcher states are restored, prompts a
searcher asks for again that are already scored are told from the store at no cost, and the
budget counts what the store says was spent. So a campaign killed at any point and resumed ends
where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from promptscout.builders import (
    campaign_objectives,
    campaign_task,
    load_campaign_model,
    ray_evaluator,
    write_export,
)
from promptscout.config import CampaignConfig
from promptscout.ensemble.finalize import finalize_ensembles
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator
from promptscout.evaluation.cache import ScoreCache
from promptscout.evaluation.racing import PairedComparison, race_stages
from promptscout.leaderboard import LeaderboardEntry, build_leaderboard
from promptscout.model import LanguageModel
from promptscout.objectives import Objective, Ranking
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, Searcher, create_searcher
from promptscout.store import Store
from promptscout.tasks import Task

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


class Campaign:
    """One campaign bound to its store.

    Args:
        config: The validated campaign file.
        store: The open (writable) store; new or holding this campaign's earlier runs.
        evaluator_factory: Builds the evaluator from (task, objectives, config, score cache);
            the default loads the configured model and scores in-process.
        progress: Show progress bars on stderr.
    """

    def __init__(
        self,
        config: CampaignConfig,
        store: Store,
        evaluator_factory: Callable[
            [Task, list[Objective], CampaignConfig, ScoreCache | None], Evaluator
        ]
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
        # With Ray the model lives on the workers: the driver loads it only if a white-box
        # searcher asks for it.
        ray = config.evaluator.type == "ray"
        self._evaluator_factory = evaluator_factory or (
            ray_evaluator if ray else self._local_evaluator
        )
        self._evaluator: Evaluator | None = None
        self._model: LanguageModel | None = None
        self.cache = ScoreCache(store)
        self.stages = race_stages(config.racing, self.search_ids, config.seed)
        self.comparison = PairedComparison(
            self.task, self.objectives, self.ranking, config.racing.z
        )
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
                store_path=str(self.store.path),
                campaign=self.config.name,
                model_provider=self.model,
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

    def model(self) -> LanguageModel:
        """The configured model in this process, loaded on first use and then shared by the
        local evaluator and white-box searchers."""
        if self._model is None:
            self._model = load_campaign_model(self.config)
        return self._model

    def _local_evaluator(
        self,
        task: Task,
        objectives: list[Objective],
        config: CampaignConfig,
        cache: ScoreCache | None,
    ) -> Evaluator:
        from promptscout.evaluation.local import LocalEvaluator

        return LocalEvaluator(
            self.model(), task, objectives, cache=cache, soft_resolver=self.store.get_soft
        )

    def _check_label_words(self) -> None:
        """Refuse, before anything is scored, label words the model reads nothing of (e.g. a
        zero-width space): every candidate would fail. Checked where the model is in this
        process; remote evaluators report it per candidate instead."""
        if self._model is None or not self.task.label_words:
            return
        try:
            self._model.score_labels(["x"], self.task.label_words)
        except PromptscoutError as exc:
            raise PromptscoutError(f"{self.config.source}: [task] label_words: {exc}") from None

    @property
    def evaluator(self) -> Evaluator:
        """The evaluator, built on first use (loading the model takes time)."""
        if self._evaluator is None:
            self._evaluator = self._evaluator_factory(
                self.task, self.objectives, self.config, self.cache
            )
            self._check_label_words()
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

    def _affordable(self, started: float, prior_seconds: float) -> tuple[int | None, str]:
        """How many more candidates the budget allows (None: unlimited), or why none."""
        budget = self.config.budget
        minutes = budget.minutes
        if minutes is not None and prior_seconds + time.time() - started >= minutes * 60:
            return 0, "time budget spent"
        allowed = None
        if budget.examples is not None:
            left = budget.examples - self.store.examples_scored(self.search_split)
            # A candidate may need the whole split; racing usually stops it sooner.
            allowed = left // len(self.search_ids)
            if allowed <= 0:
                return 0, "example budget spent"
        if budget.candidates is not None:
            left = budget.candidates - self.store.count_prompts(self.search_split)
            if left <= 0:
                return 0, "candidate budget spent"
            allowed = left if allowed is None else min(allowed, left)
        return allowed, ""

    def _search(self) -> str:
        started, prior = time.time(), self.store.seconds_spent()
        bar = tqdm(
            total=self.config.budget.examples,
            initial=self.store.examples_scored(self.search_split),
            unit="ex",
            desc="search",
            disable=not self.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        # The cursor (whose turn it is, and the size of an ask in flight) is saved with every
        # turn, so a resumed campaign continues with the same searcher and the same ask size.
        cursor = self.store.get_meta("cursor") or {"turn": 0, "n": None}
        turn, pending = int(cursor["turn"]), cursor["n"]
        idle = 0  # turns in a row that scored nothing new
        try:
            while True:
                if all(s.exhausted for s in self.searchers):
                    return "every searcher has proposed all it can"
                searcher = self.searchers[turn % len(self.searchers)]
                if searcher.exhausted:
                    turn, pending = turn + 1, None
                    continue
                if pending is None:
                    allowed, reason = self._affordable(started, prior)
                    if reason:
                        return reason
                    # Enough prompts to keep every parallel worker busy (the cursor keeps the
                    # ask size, so a resumed campaign asks for the same).
                    n = max(searcher.config.batch_size, self.evaluator.parallelism)
                    n = n if allowed is None else min(n, allowed)
                    self.store.set_meta("cursor", {"turn": turn, "n": n})
                else:
                    n, pending = int(pending), None
                prompts = _unique(searcher.ask(n))
                self._keep_soft(searcher, prompts)
                turn += 1
                new = self._race(searcher, prompts, bar, {"turn": turn, "n": None})
                idle = 0 if new else idle + 1
                if idle >= IDLE_ROUNDS * len(self.searchers):
                    return "searchers proposed nothing new"
        finally:
            bar.close()

    def _keep_soft(self, searcher: Searcher, prompts: list[Prompt]) -> None:
        """Store the tensors of the soft prompts just asked for, before anything scores them
        (evaluators resolve them from the store; a prompt whose tensors are missing fails)."""
        for prompt in prompts:
            if prompt.soft and not self.store.has_soft(prompt.soft):
                tensors = searcher.soft_tensors(prompt.soft)
                if tensors is not None:
                    self.store.put_soft(prompt.soft, tensors)

    def _incumbent(self) -> tuple[Prompt, Evaluation] | None:
        """The best candidate on the whole search split before the current batch.

        It is saved in the store at the end of every batch, so a resumed campaign races the
        in-flight batch against the same incumbent as the uninterrupted run did.
        """
        key = self.store.get_meta("incumbent")
        if key is None:
            return None
        evaluation = self.store.find_evaluation(key, self.search_split, self.search_ids)
        prompt = self.store.prompts()[key][0]
        return (prompt, evaluation) if evaluation is not None else None

    def _race(
        self, searcher: Searcher, prompts: list[Prompt], bar: Any, cursor: dict[str, Any]
    ) -> int:
        """Score a batch stage by stage, stopping candidates clearly behind the incumbent; tell
        the searcher each prompt's last evaluation. Returns how many evaluations were new.

        An evaluation already in the store (same prompt, same examples) is reused at no cost,
        which makes a resumed batch replay the decisions of the interrupted one.
        """
        incumbent = self._incumbent()
        results: dict[str, Evaluation] = {}
        remaining, new = list(prompts), 0
        covered: tuple[str, ...] = ()
        for stage_ids in self.stages:
            # What a stage costs: the examples earlier stages of this race did not cover. It is
            # what the model reads (earlier outputs come from the score cache), but derived from
            # the stages alone, so a resumed campaign spends exactly what an uninterrupted one does.
            cost = len(set(stage_ids) - set(covered))
            covered = stage_ids
            todo = []
            for prompt in remaining:
                found = self.store.find_evaluation(prompt.key, self.search_split, stage_ids)
                if found is None:
                    todo.append(prompt)
                else:
                    results[prompt.key] = found
            by_key = {p.key: p for p in todo}
            if todo:
                # The bar follows the budget (cost per evaluation), not the texts the evaluator
                # reads: earlier stages' texts come from the score cache and cost nothing.
                for evaluation in self.evaluator.iter_evaluate(todo, self.search_split, stage_ids):
                    evaluation = dataclasses.replace(evaluation, examples=cost)
                    bar.update(cost)
                    self.store.add_evaluation(
                        by_key[evaluation.prompt_key], searcher.name, evaluation
                    )
                    results[evaluation.prompt_key] = evaluation
                    new += 1
                    if evaluation.error:
                        _log(f"candidate {evaluation.prompt_key} failed: {evaluation.error}")
            if incumbent is not None and stage_ids != self.search_ids:
                remaining = [
                    p
                    for p in remaining
                    if not self._behind(p, results[p.key], incumbent, stage_ids)
                ]
            else:
                remaining = [p for p in remaining if results[p.key].ok]
        if prompts:
            searcher.tell([(p, results[p.key]) for p in prompts])
        # One transaction ends the turn: the searcher's state, the incumbent and the cursor.
        self.store.end_turn(
            searcher.name,
            searcher.state(),
            {"incumbent": self._best_key(prompts, results, incumbent), "cursor": cursor},
        )
        return new

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

    def _best_key(
        self,
        prompts: list[Prompt],
        results: dict[str, Evaluation],
        incumbent: tuple[Prompt, Evaluation] | None,
    ) -> str | None:
        """The incumbent after this batch: the best candidate on the whole search split."""
        best_key = incumbent[0].key if incumbent else None
        best = self.ranking.score(incumbent[1].objectives) if incumbent else float("-inf")
        for prompt in prompts:
            evaluation = results[prompt.key]
            if evaluation.ok and evaluation.example_ids == self.search_ids:
                score = self.ranking.score(evaluation.objectives)
                if score > best:
                    best, best_key = score, prompt.key
        return best_key

    # -- the end ----------------------------------------------------------------------------

    def finalize(self) -> None:
        """Re-score the top candidates on the held-out split and write the export."""
        top_k = self.config.leaderboard.top_k
        holdout_split = self.config.task.holdout_split
        holdout_ids = self.store.get_meta("holdout_examples")
        leaders = build_leaderboard(self.store, top=top_k, ensembles=False) if top_k > 0 else []
        finalists = [e for e in leaders if e.test is None]
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
        # Test intervals of the finalists, and the ensembles of them (pooled stored outputs).
        options = self.config.leaderboard
        n_ensembles = finalize_ensembles(
            self.store,
            self.task,
            self.objectives,
            lambda: self.evaluator,  # built only if content-free inputs need scoring
            top_k=top_k,
            methods=options.ensembles,
            size=options.ensemble_size,
            calibrate=options.calibrate,
            log=_log,
        )
        # The export's rows: every finalist, plus as many rows as there are ensembles (those that
        # rank among them on dev).
        write_export(self.store, self.config.export_path, (top_k + n_ensembles) or None)

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()


def _unique(prompts: Sequence[Prompt]) -> list[Prompt]:
    seen: dict[str, Prompt] = {}
    for prompt in prompts:
        seen.setdefault(prompt.key, prompt)
    return list(seen.values())
