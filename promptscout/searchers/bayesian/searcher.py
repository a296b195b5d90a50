"""The Bayesian searcher: one Optuna trial per asked prompt (see the package docstring)."""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from promptscout.prompts import Prompt
from promptscout.searchers.base import Outcome, SearchContext, Searcher, Status
from promptscout.searchers.bayesian.space import BayesianConfig, PromptSpace

if TYPE_CHECKING:  # optuna is imported on first use: config parsing must stay fast
    import optuna


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _sqlite_storage(url: str) -> Any:
    """An Optuna RDBStorage on a SQLite file, in WAL mode with synchronous=NORMAL like the
    campaign store: a killed process loses nothing committed, and a commit costs no fsync (by
    default every commit does, several per trial)."""
    path = url.removeprefix("sqlite:///")

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=60, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    return _optuna().storages.RDBStorage(url, engine_kwargs={"creator": connect})


def _rank(outcome: dict[str, Any]) -> tuple[int, int]:
    """How informative an outcome is: a full-split score beats a deeper minibatch beats a fail."""
    return {"FAIL": 0, "PRUNED": 1, "COMPLETE": 2}[outcome["state"]], outcome.get("step", 0)


class _Study:
    """An Optuna study and its storage, with the few storage calls :meth:`Study.tell` lacks."""

    def __init__(self, storage: Any, name: str, directions: list[str], sampler: Any) -> None:
        optuna = _optuna()
        self.storage, self.name = storage, name
        self.study = optuna.create_study(
            storage=storage,
            study_name=name,
            directions=directions,
            sampler=sampler,
            load_if_exists=True,
        )
        self.id = storage.get_study_id_from_name(name)

    def trial(self, number: int) -> optuna.trial.FrozenTrial:
        return self.storage.get_trial(
            self.storage.get_trial_id_from_study_id_trial_number(self.id, number)
        )

    def tell(self, number: int, outcome: dict[str, Any]) -> optuna.trial.FrozenTrial:
        """Finish trial ``number`` (see :meth:`BayesianSearcher.trial_outcome`)."""
        TrialState = _optuna().trial.TrialState
        if outcome["state"] == "PRUNED":
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.id, number)
            if len(self.study.directions) == 1:
                self.storage.set_trial_intermediate_value(
                    trial_id, outcome["step"], outcome["score"]
                )
            else:  # Optuna keeps no intermediate values for multi-objective trials
                self.storage.set_trial_user_attr(trial_id, "partial_score", outcome["score"])
            return self.study.tell(number, state=TrialState.PRUNED)
        if outcome["state"] == "COMPLETE":
            return self.study.tell(number, outcome["values"])
        return self.study.tell(number, state=TrialState.FAIL)


class BayesianSearcher(Searcher):
    """TPE (Optuna) over :class:`PromptSpace`, one trial per asked prompt.

    TPE samples in an in-memory study, rebuilt from the saved state on resume (an RDB round trip
    per parameter costs more than sampling); every finished trial is copied, in number order, to
    the study in ``<store stem>.optuna.db`` next to the campaign store.
    """

    type_name = "bayesian"
    config_class = BayesianConfig
    state_version = 1
    config: BayesianConfig

    def __init__(self, config: BayesianConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        self.space = PromptSpace(config, context)
        self._work: _Study | None = None  # where TPE samples, rebuilt from the records
        self._mirror: _Study | None = None  # its copy next to the campaign store
        self._mirror_size = 0  # records copied to the study file
        self._mirror_found = 0  # trials the study file held when opened
        self._loaded = False
        # One record per trial, in trial-number order: the study's content as the state keeps it.
        self._records: list[dict[str, Any]] = []
        self._pending: dict[int, str] = {}  # trial number -> prompt key, asked and not yet told
        self._outcomes: dict[str, dict[str, Any]] = {}  # prompt key -> what it was told
        self._exhausted = False

    # -- the studies -------------------------------------------------------------------------

    @property
    def study_name(self) -> str:
        return f"{self.context.campaign or 'promptscout'}/{self.name}"

    @property
    def storage_url(self) -> str | None:
        """``sqlite:///<store stem>.optuna.db`` next to the campaign store; None outside one."""
        if not self.context.store_path:
            return None
        return f"sqlite:///{Path(self.context.store_path).resolve().with_suffix('.optuna.db')}"

    @property
    def study(self) -> optuna.Study:
        """The Optuna study TPE samples in (its trials are this searcher's trials)."""
        return self._working().study

    @property
    def directions(self) -> list[str]:
        return ["maximize", "minimize"] if self.config.multi_objective else ["maximize"]

    def _sampler(self, number: int) -> optuna.samplers.BaseSampler:
        """TPE seeded for one trial number, so a trial's sample depends only on the campaign
        seed, its number and the trials before it, not on how many processes asked so far."""
        optuna = _optuna()
        seed = int(np.random.SeedSequence([self.context.seed, number]).generate_state(1)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                n_startup_trials=self.config.n_startup_trials,
                multivariate=True,
                group=True,
                constant_liar=True,
                seed=seed,
            )

    def _working(self) -> _Study:
        if self._work is None:
            work = _Study(
                _optuna().storages.InMemoryStorage(),
                self.study_name,
                self.directions,
                self._sampler(len(self._records)),
            )
            work.study.add_trials([self._frozen(r, system_attrs=True) for r in self._records])
            self._work = work
            self._open_mirror()
        return self._work

    def _open_mirror(self) -> None:
        """Open the study file; it holds the finished trials in number order, up to the first
        trial still running.

        Trials in the file beyond the records are what a killed run finished after its last
        saved state: this run makes the same trials again (sampling is deterministic), and they
        are kept when their parameters agree. A file that disagrees with the records, or that is
        found when no state was loaded (the run before was killed before its first tell, or its
        store was deleted), is started again.
        """
        url = self.storage_url
        if url is None:
            return
        self._mirror = _Study(_sqlite_storage(url), self.study_name, self.directions, None)
        existing = self._mirror.study.get_trials(deepcopy=False)
        agrees = [d.name.lower() for d in self._mirror.study.directions] == self.directions
        agrees = agrees and all(
            t.params == r["params"] for t, r in zip(existing, self._records, strict=False)
        )
        if existing and self._loaded and agrees:
            confirmed = 0  # records in the file already
            while confirmed < min(len(existing), len(self._records)) and (
                self._records[confirmed]["state"] != "RUNNING"
            ):
                confirmed += 1
            self._mirror_size, self._mirror_found = confirmed, len(existing)
        else:
            self._reset_mirror(0)
        self._flush_mirror()

    def _reset_mirror(self, size: int) -> None:
        """Start the study file again with the first ``size`` records (all finished)."""
        optuna = _optuna()
        assert self._mirror is not None
        study = self._mirror.study
        if study.get_trials(deepcopy=False) or [d.name.lower() for d in study.directions] != (
            self.directions
        ):
            optuna.delete_study(study_name=self.study_name, storage=self._mirror.storage)
            self._mirror = _Study(self._mirror.storage, self.study_name, self.directions, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._mirror.study.set_metric_names(["score", "prompt_tokens"][: len(self.directions)])
        self._mirror.study.set_user_attr("choices", self.space.choices())
        self._mirror.study.add_trials([self._frozen(r) for r in self._records[:size]])
        self._mirror_size = self._mirror_found = size

    def _flush_mirror(self) -> None:
        """Copy finished trials to the study file, in number order."""
        if self._mirror is None:
            return
        while self._mirror_size < len(self._records):
            number, record = self._mirror_size, self._records[self._mirror_size]
            if record["state"] == "RUNNING":
                return
            if number < self._mirror_found:  # finished by a killed run: the same trial?
                if self._mirror.trial(number).params == record["params"]:
                    self._mirror_size += 1
                    continue
                self._reset_mirror(number)
            self._mirror.study.add_trial(self._frozen(record))
            self._mirror_size += 1

    def _frozen(
        self, record: dict[str, Any], system_attrs: bool = False
    ) -> optuna.trial.FrozenTrial:
        optuna = _optuna()
        params = record["params"]
        dists = {
            name: optuna.distributions.CategoricalDistribution(list(range(n)))
            for name, n in self.space.sizes(params).items()
        }
        user_attrs = self._user_attrs(params)
        if "partial" in record:
            user_attrs["partial_score"] = record["partial"]
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState[record["state"]],
            values=record["values"],
            params=params,
            distributions=dists,
            user_attrs=user_attrs,
            # TPE's constant liar reads a running trial's relative parameters from these.
            system_attrs=(record.get("system_attrs") or {}) if system_attrs else {},
            intermediate_values={int(k): v for k, v in record["intermediate"].items()},
        )

    def _user_attrs(self, params: dict[str, int]) -> dict[str, Any]:
        """What people reading the study see of a trial's prompt (e.g. in optuna-dashboard)."""
        prompt = self.space.prompt(params)
        return {"prompt_key": prompt.key, "prompt": prompt.to_dict()} if prompt is not None else {}

    # -- trials ------------------------------------------------------------------------------

    def _next_trial(self) -> tuple[int, dict[str, int]]:
        """Create the next trial; its number and parameters."""
        work, number = self._working(), len(self._records)
        if number < len(self.space.initial):
            work.study.enqueue_trial(self.space.initial[number])
        work.study.sampler = self._sampler(number)
        trial = work.study.ask()
        params = self.space.assign(lambda n, k: trial.suggest_categorical(n, list(range(k))))
        for name, value in self._user_attrs(params).items():
            trial.set_user_attr(name, value)
        record = {"params": params, "key": None, "state": "RUNNING", "values": None}
        self._records.append({**record, "intermediate": {}})
        return number, params

    def _finish(self, number: int, outcome: dict[str, Any]) -> None:
        """Tell trial ``number`` an outcome, in the working study and its copy."""
        self._pending.pop(number, None)
        record = self._records[number]
        frozen = self._working().tell(number, outcome)
        record.pop("system_attrs", None)
        record.update(
            state=frozen.state.name,
            values=frozen.values,
            intermediate={str(k): v for k, v in frozen.intermediate_values.items()},
        )
        if outcome["state"] == "PRUNED" and len(self.directions) > 1:
            record["partial"] = outcome["score"]
        self._flush_mirror()

    def _unseen_params(self) -> dict[str, int] | None:
        """A uniformly drawn assignment whose prompt is neither told nor pending, or None."""
        rng = np.random.default_rng([self.context.seed, len(self._records), 1])
        for _ in range(self.config.max_tries):
            params = self.space.assign(lambda name, n: int(rng.integers(n)))
            prompt = self.space.prompt(params)
            if prompt is not None and not self._known(prompt.key):
                return params
        return None

    def _known(self, key: str) -> bool:
        return key in self._outcomes or key in self._pending.values()

    def _ask_one(self) -> Prompt | None:
        for attempt in range(self.config.max_tries + 1):
            if attempt == self.config.max_tries:
                # TPE keeps proposing known prompts: try one unseen prompt drawn at random.
                params = self._unseen_params()
                if params is None:
                    return None
                self._working().study.enqueue_trial(params)
            number, params = self._next_trial()
            prompt = self.space.prompt(params, {"trial": number})
            if prompt is None:
                self._finish(number, {"state": "FAIL"})
                continue
            key = prompt.key
            self._records[number]["key"] = key
            if key in self._outcomes:  # a repeat: the trial gets the known value, no evaluation
                self._finish(number, self._outcomes[key])
            elif key in self._pending.values():  # being scored: told together with it
                self._pending[number] = key
            else:
                self._pending[number] = key
                return prompt
        return None

    # -- the searcher contract ---------------------------------------------------------------

    def ask(self, n: int) -> list[Prompt]:
        batch: list[Prompt] = []
        while len(batch) < n and not self._exhausted:
            prompt = self._ask_one()
            if prompt is None:
                self._exhausted = True  # the space looks used up
            else:
                batch.append(prompt)
        return batch

    def trial_outcome(self, outcome: Outcome) -> dict[str, Any]:
        """What the campaign's outcome tells a trial: FAIL, PRUNED (stopped by racing, with its
        minibatch score at step = examples scored) or COMPLETE."""
        if outcome.status is Status.FAILED:
            return {"state": "FAIL"}
        if outcome.status is Status.STOPPED:
            return {"state": "PRUNED", "step": outcome.examples, "score": outcome.score}
        tokens = float(outcome.evaluation.prompt_tokens)
        values = [outcome.score, tokens][: len(self.directions)]
        return {"state": "COMPLETE", "values": values, "n": 1}

    def _remember(self, key: str, outcome: dict[str, Any]) -> None:
        known = self._outcomes.get(key)
        if known is None or _rank(outcome) > _rank(known):
            self._outcomes[key] = outcome
        elif outcome["state"] == known["state"] == "COMPLETE":  # average repeated measurements
            n = known["n"] + 1
            values = [
                a + (b - a) / n for a, b in zip(known["values"], outcome["values"], strict=True)
            ]
            self._outcomes[key] = {"state": "COMPLETE", "values": values, "n": n}

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            key = outcome.key
            self._remember(key, self.trial_outcome(outcome))
            for number in [n for n, k in self._pending.items() if k == key]:
                self._finish(number, self._outcomes[key])

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def pareto_front(self) -> list[str]:
        """Prompt keys of the best trials, best first: the Pareto front of (score, prompt
        tokens) in multi-objective mode, else the prompt(s) with the best score."""
        if self._work is None:
            return []
        best = sorted(self._work.study.best_trials, key=lambda t: (-t.values[0], t.number))
        keys = [self._records[t.number]["key"] for t in best]
        return [k for i, k in enumerate(keys) if k and k not in keys[:i]]

    def save(self) -> dict[str, Any]:
        records = []
        for number, record in enumerate(self._records):
            record = dict(record)
            if record["state"] == "RUNNING":  # TPE's constant liar reads their system attrs
                record["system_attrs"] = self._working().trial(number).system_attrs
            records.append(record)
        return {
            "trials": records,
            "pending": {str(n): k for n, k in self._pending.items()},
            "outcomes": self._outcomes,
            "exhausted": self._exhausted,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._records = [
            {**r, "params": {k: int(v) for k, v in r["params"].items()}} for r in state["trials"]
        ]
        self._pending = {int(n): k for n, k in state["pending"].items()}
        self._outcomes = dict(state["outcomes"])
        self._exhausted = bool(state["exhausted"])
        self._loaded, self._work, self._mirror = True, None, None
        self._working()
