"""Kill and resume, once for every searcher: a campaign killed mid-batch ends like a straight run.

For each case of :data:`CASES` (every registered searcher, one table): a straight run of a
campaign with that searcher on the tiny model and task; then the same campaign killed by an
evaluator that raises KeyboardInterrupt at evaluation ``k`` (as Ctrl-C or a kill would:
``k - 1`` evaluations are committed, an ask is in flight, the searcher's state from an earlier
turn is saved); then resumed. The resumed campaign must end with the straight run's
leaderboard, and the searcher's final saved state must equal the straight run's. Racing is on
and stops candidates readily (:data:`campaign_fixtures.RACING`, cross-entropy ranking first),
so the killed batch and the resume cross racing decisions.

Checks that belong to one searcher (its own state fields, the Optuna study beside the store,
the curve the report reads) are in :data:`CHECKS`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
from campaign_fixtures import RACING, campaign_text, dying_factory, run_campaign, saved_state
from writer_fixtures import GOOD, SeededProposer, WriterCampaign

from promptscout.campaign import Campaign
from promptscout.config import CampaignConfig, load_config
from promptscout.report import searcher_curves
from promptscout.searchers import SEARCHERS
from promptscout.store import Store


@dataclass(frozen=True)
class Case:
    """A campaign around one searcher.

    Attributes:
        type: The searcher's type (its name in the store, too).
        options: Its ``[[searchers]]`` options: small sizes for the tiny random model.
        budget: Examples scored on the search split (8 per complete candidate).
        kills: The evaluations at which a killed run dies, each one test: after the
            searcher's first saved state, mid-ask, before its end. They follow the case's turn
            sizes (the campaign's first turn asks for one prompt, then batches), so
            a change of those moves them.
        beside: Other searchers of the campaign (type -> options), taking turns after it.
        proposer: Makes the campaign's ``[proposer]`` (writers; None: the campaign's model).
    """

    type: str
    options: dict[str, Any]
    budget: int
    kills: tuple[int, ...]
    beside: dict[str, dict[str, Any]] = field(default_factory=dict)
    proposer: Callable[[], Any] | None = None

    def campaign_class(self) -> Any:
        """What runs this case's campaign: a campaign writing with its own proposer, if any
        (a fresh one per run, as a restarted process has)."""
        if self.proposer is None:
            return Campaign
        return functools.partial(WriterCampaign, proposer=self.proposer())


TEMPLATES = ["Review: {text}\nSentiment:", "{text} It was", "Text: {text} Answer:"]
# What the writers' seeded stand-in proposer answers: instructions, a diagnosis, and junk the
# guardrails drop.
WRITTEN = [*GOOD, *(f"Judge the review, way {i}." for i in range(12)), "", "good", "It was bad"]
WRITER = {"batch_size": 3, "rounds": 3, "writes_per_round": 2, "samples_per_write": 2,
          "templates": TEMPLATES[:2], "instructions": ["", "Classify the review."]}  # fmt: skip

# One case per registered searcher (two for evolutionary: GA and DE). Label words, trigger
# counts and learning rates are left at their defaults (the campaign's label words).
CASES: dict[str, Case] = {
    "manual": Case(
        "manual",
        {"templates": TEMPLATES, "instructions": ["", "Classify the review.", "Good or bad?"],
         "batch_size": 3},
        budget=400,
        kills=(7, 12),
    ),
    "random": Case("random", {"max_demos": 2, "batch_size": 3}, budget=120, kills=(11, 35)),
    "bayesian": Case(
        "bayesian",
        {"templates": TEMPLATES[:2], "max_demos": 2, "n_startup_trials": 4, "batch_size": 4},
        budget=120,
        kills=(14, 25),
        beside={"manual": {"templates": TEMPLATES[:2], "batch_size": 2}},
    ),
    "evolutionary": Case(
        "evolutionary",
        {"population_size": 4, "batch_size": 3, "max_demos": 2},
        budget=120,
        kills=(20, 40),
    ),
    "evolutionary-de": Case(
        "evolutionary",
        {"algorithm": "de", "population_size": 4, "batch_size": 3, "max_demos": 2},
        budget=120,
        kills=(24,),
    ),
    "autoprompt": Case(
        "autoprompt",
        {"template": "{text} [T][T][T]", "iterations": 10, "candidates": 4, "grad_batch": 4,
         "eval_examples": 4, "batch_size": 2},
        budget=200,
        kills=(7,),
    ),
    "rl": Case(
        "rl",
        {"steps": 5, "train_examples": 4, "greedy_every": 2, "batch_size": 3},
        budget=100_000,
        kills=(12, 25),
    ),
    "soft": Case(
        "soft",
        # The tiny model's kill points are set for this step (the default suits real models).
        {"vectors": 3, "init_text": "review : sentiment", "patience": 3, "max_epochs": 8,
         "train_batch": 4, "learning_rate": 0.03},
        budget=400,
        kills=(7, 13),
    ),
    "peft": Case(
        "peft",
        {"method": "lora", "rank": 2, "learning_rate": 0.05, "dropout": 0.1, "patience": 8,
         "max_epochs": 8, "train_batch": 4},
        budget=400,
        kills=(6, 11),
    ),
    "ape": Case("ape", WRITER, budget=200, kills=(14, 18),
                proposer=lambda: SeededProposer(WRITTEN)),
    "opro": Case("opro", WRITER, budget=200, kills=(14, 22),
                 proposer=lambda: SeededProposer(WRITTEN)),
    "reflect": Case("reflect", {**WRITER, "minibatch": 4, "merge_every": 2}, budget=200,
                    kills=(8, 15), proposer=lambda: SeededProposer(WRITTEN)),
}  # fmt: skip


def write_case(model_dir: Path, task_dir: Path, store: Path, case: Case) -> CampaignConfig:
    """The tiny campaign (racing on, cross-entropy first) with the case's searchers only."""
    text = campaign_text(model_dir, task_dir, store, budget=case.budget)
    text = text[: text.index("[[searchers]]")] + RACING  # its own searchers left out
    for type_name, options in [(case.type, case.options), *case.beside.items()]:
        text += f'\n[[searchers]]\ntype = "{type_name}"\n'
        text += "".join(f"{key} = {json.dumps(value)}\n" for key, value in options.items())
    path = store.with_suffix(".toml")
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    config.objective.names = ["cross_entropy", "accuracy"]  # smooth: racing stops some
    return config


@dataclass
class Straight:
    """A straight run: its config, leaderboard rows and the searcher's final state."""

    config: CampaignConfig
    board: list[tuple]
    state: dict[str, Any]
    case: Case


@pytest.fixture(scope="module")
def case_campaign(tiny_causal_dir, tiny_task_dir):
    """``case_campaign(case_id, store) -> CampaignConfig``."""
    return lambda case_id, store: write_case(tiny_causal_dir, tiny_task_dir, store, CASES[case_id])


@pytest.fixture(scope="module")
def straight(case_campaign, tmp_path_factory):
    """``straight(case_id) -> Straight``, run once per module (kill points share it)."""
    folder, runs = tmp_path_factory.mktemp("straight"), {}

    def get(case_id: str) -> Straight:
        if case_id not in runs:
            config = case_campaign(case_id, folder / f"{case_id}.db")
            case = CASES[case_id]
            board = run_campaign(config, case.campaign_class())
            runs[case_id] = Straight(config, board, saved_state(config, case.type), case)
        return runs[case_id]

    return get


def same_state(a: dict | None, b: dict | None) -> bool:
    """Equal as stored (JSON text: NaN equals NaN, tuples equal lists)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- checks that belong to one searcher ----------------------------------------------------------


class Checks:
    """Extra checks of one case, beyond the shared ones (none by default)."""

    def comparable(self, state: dict | None) -> dict | None:
        """The part of a saved state a resumed run must reproduce (all of it by default)."""
        return state

    def straight(self, run: Straight) -> None:
        """On the straight run."""

    def killed(self, run: Straight, killed: CampaignConfig) -> None:
        """On the killed campaign's store, before the resume."""

    def resumed(self, run: Straight, killed: CampaignConfig) -> None:
        """On the resumed campaign's store."""


def study_trials(config: CampaignConfig) -> list[tuple]:
    """The Bayesian searcher's Optuna study, in its file beside the store."""
    url = f"sqlite:///{config.store_path.with_suffix('.optuna.db')}"
    study = optuna.load_study(study_name="tiny/bayesian", storage=url)
    return [(t.number, t.params, t.state.name, t.values) for t in study.trials]


class BayesianChecks(Checks):
    """The study file beside the store resumes to the same trials (racing-stopped ones are
    pruned trials)."""

    def straight(self, run):
        trials = study_trials(run.config)
        assert len(trials) > 8 and {t[2] for t in trials} >= {"COMPLETE", "PRUNED"}

    def killed(self, run, killed):
        assert study_trials(killed) != study_trials(run.config)

    def resumed(self, run, killed):
        assert study_trials(killed) == study_trials(run.config)


class EvolutionaryChecks(Checks):
    """Several generations; racing depth is the first fitness value (1.0: the whole split)."""

    def straight(self, run):
        state = run.state
        assert state["generation"] >= 3
        assert len(state["population"]) == run.case.options["population_size"]
        assert 1.0 in {i["fitness"][0] for i in state["population"] + state["hall_of_fame"]}


class AutoPromptChecks(Checks):
    """Search steps were taken before the kill and after it."""

    def straight(self, run):
        assert run.state["step"] > 4

    def killed(self, run, killed):
        assert saved_state(killed, "autoprompt")["step"] < run.state["step"]


class RLChecks(Checks):
    """Training ends with the final greedy prompt; the reward curve the report draws is read
    back from the resumed store, one point per training step."""

    def straight(self, run):
        steps = run.case.options["steps"]
        assert run.state["final"] and len(run.state["curve"]["points"]) == steps

    def killed(self, run, killed):
        assert not saved_state(killed, "rl")["final"]

    def resumed(self, run, killed):
        with Store(killed.store_path, readonly=True) as store:
            curve = searcher_curves(store)["rl"]
        assert [x for x, _ in curve["points"]] == list(range(run.case.options["steps"]))
        assert curve["x"] == "training step"


class SoftChecks(Checks):
    """Several soft prompts reach the leaderboard, and the resumed store holds every soft
    prompt's tensors (they are stored when asked for, before scoring, so a kill between the two
    must not lose them)."""

    def straight(self, run):
        assert len(run.board) > 3

    def resumed(self, run, killed):
        with Store(killed.store_path, readonly=True) as store:
            softs = [p.soft for p, _ in store.prompts().values() if p.soft]
            assert len(softs) > 3 and all(store.has_soft(digest) for digest in softs)


class WriterChecks(Checks):
    """Written prompts were scored; the proposer's seconds (wall time) are the one part of the
    state a resumed run does not reproduce; its calls, tokens and drops it does."""

    def comparable(self, state):
        usage = {k: v for k, v in state["writer"]["usage"].items() if k != "seconds"}
        return {**state, "writer": {**state["writer"], "usage": usage}}

    def straight(self, run):
        assert run.state["round"] >= 2 and run.state["writer"]["usage"]["writes"] > 0
        assert run.state["guard"]["kept"] > 0 and run.state["guard"]["dropped"]

    def killed(self, run, killed):
        state = saved_state(killed, run.case.type)
        assert state["writer"]["usage"]["writes"] <= run.state["writer"]["usage"]["writes"]


CHECKS: dict[str, Checks] = {
    "ape": WriterChecks(),
    "opro": WriterChecks(),
    "reflect": WriterChecks(),
    "bayesian": BayesianChecks(),
    "evolutionary": EvolutionaryChecks(),
    "evolutionary-de": EvolutionaryChecks(),
    "autoprompt": AutoPromptChecks(),
    "rl": RLChecks(),
    "soft": SoftChecks(),
}


# -- the shared tests ----------------------------------------------------------------------------


def test_every_registered_searcher_has_a_case():
    assert set(SEARCHERS) <= {case.type for case in CASES.values()}


@pytest.mark.parametrize("case_id", CASES)
def test_straight_run_crosses_racing_decisions(case_id, straight):
    run = straight(case_id)
    with Store(run.config.store_path, readonly=True) as store:
        split = len(store.meta.search_examples)
        deepest: dict[str, int] = {}
        for stored in store.evaluations(store.meta.search_split):
            if stored.searcher == run.case.type and stored.evaluation.ok:
                key, scored = stored.evaluation.prompt_key, len(stored.evaluation.example_ids)
                deepest[key] = max(deepest.get(key, 0), scored)
    # Racing stopped some of the searcher's prompts and let others through the whole split.
    assert min(deepest.values()) < split == max(deepest.values())
    assert run.board and run.state is not None
    CHECKS.get(case_id, Checks()).straight(run)


@pytest.mark.parametrize(
    "case_id, kill",
    [pytest.param(case_id, kill, id=f"{case_id}-{kill}")
     for case_id, case in CASES.items() for kill in case.kills],
)  # fmt: skip
def test_killed_campaign_resumes_to_the_straight_run(case_id, kill, straight, case_campaign,
                                                     tmp_path):  # fmt: skip
    run, checks = straight(case_id), CHECKS.get(case_id, Checks())
    killed = case_campaign(case_id, tmp_path / "killed.db")

    with pytest.raises(KeyboardInterrupt):
        run_campaign(killed, run.case.campaign_class(), evaluator_factory=dying_factory(kill))
    with Store(killed.store_path, readonly=True) as store:
        assert store.count_evaluations() == kill - 1
        assert store.meta.cursor.n is not None  # mid-batch: an ask was in flight
        at_kill = store.searcher_state(run.case.type)
    assert at_kill is not None  # killed after a saved state ...
    assert not same_state(at_kill, run.state)  # ... and before the searcher's end
    checks.killed(run, killed)

    assert run_campaign(killed, run.case.campaign_class()) == run.board  # resume
    assert same_state(checks.comparable(saved_state(killed, run.case.type)),
                      checks.comparable(run.state))  # fmt: skip
    checks.resumed(run, killed)
