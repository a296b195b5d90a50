"""The campaign loop: searchers propose, racing scores, the store keeps, searchers are told."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from promptscout.builders import (
    campaign_objectives,
    campaign_task,
    load_campaign_model,
    load_configured_model,
    ray_evaluator,
)
from promptscout.campaign.budget import Budget, ask_size
from promptscout.campaign.default import default_searchers, describe
from promptscout.campaign.finish import finish
from promptscout.campaign.observer import CampaignObserver
from promptscout.campaign.observers import observers_for
from promptscout.campaign.rescore import seeded_sample
from promptscout.config import CampaignConfig
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator
from promptscout.evaluation.cache import ScoreCache
from promptscout.evaluation.racing import PairedComparison, Race, race_stages
from promptscout.leaderboard import LeaderboardEntry, build_leaderboard
from promptscout.meta import Cursor
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
    dollars: float | None = None  # what the model calls cost, when the model is priced


def searcher_seed(campaign_seed: int, position: int) -> int:
    """Independent, reproducible seeds for each searcher of a campaign."""
    return int(np.random.SeedSequence([campaign_seed, position]).generate_state(1)[0])


class Campaign:
    """One campaign bound to its store.

    The loop, turn by turn: the searcher whose turn it is proposes prompts within the budget's
    allowance; a :class:`~promptscout.evaluation.racing.Race` scores them stage by stage against
    the incumbent, storing every evaluation as it arrives; the searcher is told each prompt's
    :class:`~promptscout.evaluation.outcome.Outcome`; its state, report, the incumbent and the
    cursor are saved in one transaction. At the end the finalists are re-scored on held-out data
    (:mod:`promptscout.campaign.finish`).

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
        self.meta = store.meta
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
        self._proposer: LanguageModel | None = None
        self.cache = ScoreCache(store)
        self.race = Race(
            race_stages(config.racing, self.search_ids, config.seed),
            PairedComparison(self.task, self.objectives, self.ranking, config.racing.z),
        )
        self.searchers = self._build_searchers()
        self._check_or_record_meta()
        self.observers: list[CampaignObserver] = observers_for(config)

    # -- setup ------------------------------------------------------------------------------

    def _build_searchers(self) -> list[Searcher]:
        if self.config.default_mix and not self.config.searchers:
            served, ray = self.config.model.served, self.config.evaluator.type == "ray"
            causal = not served and self.model().kind == "causal"
            self.config.searchers = default_searchers(self.task, served, ray, causal)
            _log(describe(self.config.searchers, self.config.task.min_train))
        searchers = []
        for position, spec in enumerate(self.config.searchers):
            where = f"{self.config.source}:{spec.line}" if spec.line else self.config.source
            context = SearchContext(
                self.task,
                self.task.label_words,
                searcher_seed(self.config.seed, position),
                self.ranking,
                store_path=str(self.store.path),
                campaign=self.config.name,
                model_provider=self.model,
                proposer_provider=self.proposer,
            )
            try:
                searcher = create_searcher(spec.type, spec.options, context)
                if self.config.model.served and searcher.white_box:
                    raise PromptscoutError(
                        "needs the model's internals (gradients, hidden states or its full "
                        "next-token distribution), which a served model does not give; use an "
                        "in-process model or other options"
                    )
                state = self.store.searcher_state(searcher.name)
                if state is not None:
                    searcher.load_state(state)
                searcher.check()  # before anything runs: a refusal is one line, nothing stored
            except PromptscoutError as exc:
                raise PromptscoutError(f"{where}: [[searchers]] {spec.type}: {exc}") from None
            searchers.append(searcher)
        return searchers

    def _check_or_record_meta(self) -> None:
        stored = self.meta.config
        if stored is None:
            try:
                holdout = self.task.split(self.config.task.holdout_split)
            except PromptscoutError:  # no held-out data: finalists keep dev only
                holdout = ()
            limit = self.config.task.holdout_limit
            if 0 < limit < len(holdout):  # a seeded subset, in split order
                holdout = seeded_sample(holdout, limit, [self.config.seed, 11])
            self.meta.record_start(
                self.config.to_dict(),
                self.ranking,
                list(self.search_ids),
                [e.id for e in holdout],
                list(self.task.label_words),
            )
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

    def proposer(self) -> LanguageModel:
        """The ``[proposer]`` model (loaded on first use), or the campaign's own model."""
        if not self.config.proposer.name:
            return self.model()
        if self._proposer is None:
            self._proposer = load_configured_model(self.config.proposer)
        return self._proposer

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
            recorded = self.meta.fingerprint
            if recorded is None:
                self.meta.fingerprint = fingerprint
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
            for observer in self.observers:
                observer.started(self)
            reason = self._search()
            self.finalize()
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.store.finish_run(run_id, status)
            for observer in self.observers if status != "finished" else ():
                observer.closed(self, status)
        self.meta.finish(reason)
        result = CampaignResult(
            reason,
            self.store.examples_scored(self.search_split),
            self.store.count_evaluations(),
            build_leaderboard(self.store),
            self.meta.dollars(*self.store.usage()),
        )
        for observer in self.observers:
            observer.finished(self, result)
            observer.closed(self, status)
        return result

    def _search(self) -> str:
        budget = Budget(self.config.budget, self.store, self.search_split, len(self.search_ids))
        bar = tqdm(
            total=budget.examples_total,
            initial=budget.examples_spent,
            unit="ex",
            desc="search",
            disable=not self.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        cursor = self.meta.cursor
        idle = 0  # turns in a row that scored nothing new
        try:
            while True:
                if all(s.exhausted for s in self.searchers):
                    return "every searcher has proposed all it can"
                searcher = self.searchers[cursor.turn % len(self.searchers)]
                if searcher.exhausted:
                    cursor = Cursor(cursor.turn + 1)
                    continue
                if cursor.n is None:  # a new ask (else: resume the ask in flight, same size)
                    allowance = budget.allowance()
                    if allowance.spent:
                        return allowance.reason
                    lead = not self.config.racing.enabled or self.meta.incumbent is not None
                    workers = self.evaluator.parallelism
                    n = ask_size(searcher.config.batch_size, workers, allowance, not lead)
                    cursor = Cursor(cursor.turn, n)
                    self.meta.start_ask(cursor)
                new = self._turn(searcher, cursor, bar)
                cursor = Cursor(cursor.turn + 1)
                idle = 0 if new else idle + 1
                if idle >= IDLE_ROUNDS * len(self.searchers):
                    return "searchers proposed nothing new"
        finally:
            bar.close()

    def _turn(self, searcher: Searcher, cursor: Cursor, bar: Any) -> int:
        """One searcher's turn: propose ``cursor.n`` prompts, race them, tell the outcomes, save.
        Returns how many evaluations were new (prompts proposed again are told from the store
        at no cost)."""
        assert cursor.n is not None
        prompts = searcher.propose(cursor.n)
        self._keep_soft(searcher, prompts)
        incumbent = self._incumbent()
        new = 0

        def record(prompt: Prompt, evaluation: Evaluation) -> None:
            nonlocal new
            # The bar follows the budget (cost per evaluation), not the texts the evaluator
            # reads: earlier stages' texts come from the score cache and cost nothing.
            bar.update(evaluation.examples)
            self.store.add_evaluation(prompt, searcher.name, evaluation)
            new += 1
            if evaluation.error:
                _log(f"candidate {evaluation.prompt_key} failed: {evaluation.error}")

        outcomes = self.race.run(
            prompts,
            incumbent,
            lookup=lambda p, ids: self.store.find_evaluation(p.key, self.search_split, ids),
            score=lambda todo, ids: self.evaluator.iter_evaluate(todo, self.search_split, ids),
            record=record,
        )
        if outcomes:
            searcher.tell(outcomes)
        leader = Race.leader(outcomes, incumbent, self.ranking)
        self.meta.end_turn(
            searcher.name,
            searcher.state(),
            searcher.report(),
            leader[0].key if leader else None,
            Cursor(cursor.turn + 1),
        )
        for observer in self.observers:
            observer.turn_ended(self, searcher.name, outcomes, cursor.turn)
        return new

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

        It is saved in the store at the end of every turn, so a resumed campaign races the
        in-flight batch against the same incumbent as the uninterrupted run did.
        """
        key = self.meta.incumbent
        if key is None:
            return None
        evaluation = self.store.find_evaluation(key, self.search_split, self.search_ids)
        stored = self.store.prompt(key)
        return (stored[0], evaluation) if evaluation is not None and stored else None

    # -- the end ----------------------------------------------------------------------------

    def finalize(self) -> None:
        """Re-score the top candidates on the held-out split and write the export."""
        finish(
            self.store,
            self.config,
            self.task,
            self.objectives,
            lambda: self.evaluator,  # built only if something needs scoring
            self.progress,
            _log,
            self.race.comparison,
            self._shaped_by_train,
            {searcher.name: searcher.committee() for searcher in self.searchers},
        )

    def _shaped_by_train(self, prompt: Prompt, searcher: str) -> bool:
        """Whether a candidate was shaped by the training labels: its proposer said so (the
        ``train_labels`` stamp), or it is a searcher trained on them (stores made before the
        stamp)."""
        trained = any(s.name == searcher and s.reads_train_labels for s in self.searchers)
        return trained or bool(prompt.metadata.get("train_labels"))

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
