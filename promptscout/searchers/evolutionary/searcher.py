"""The evolutionary searcher: generations of prompts bred by a GA or DE (see the package
docstring)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from deap import base, tools

from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt
from promptscout.searchers.base import Outcome, SearchContext, Searcher
from promptscout.searchers.evolutionary.de import de_select, de_trials
from promptscout.searchers.evolutionary.ga import ga_offspring, ga_survivors
from promptscout.searchers.evolutionary.genome import (
    Individual,
    RandomStream,
    from_json,
    to_json,
)
from promptscout.searchers.evolutionary.lm_operators import LMOperators
from promptscout.searchers.evolutionary.operators import Variation
from promptscout.searchers.evolutionary.space import EvolutionaryConfig, PartSpace


class EvolutionarySearcher(Searcher):
    """A population of prompts evolved by a genetic algorithm or differential evolution.

    ``ask`` hands out the current generation's offspring; once all of them are told, the
    population advances and the next generation is bred. The population, the offspring, the
    hall of fame and the random stream are the saved state.
    """

    type_name = "evolutionary"
    config_class = EvolutionaryConfig
    state_version = 1
    config: EvolutionaryConfig

    def __init__(self, config: EvolutionaryConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        self.space = PartSpace(config, context)
        self.lm: LMOperators | None = None
        if config.lm_operators:
            if context.model_provider is None and context.proposer_provider is None:
                raise PromptscoutError(
                    "evolutionary searcher: 'lm_operators' needs the campaign's model; "
                    "run it in a campaign or set lm_operators = false"
                )
            self.lm = LMOperators(context.proposer, config.lm_max_new_tokens)
        self.variation = Variation(self.space, config.crossover, self.lm)
        self.toolbox = self._toolbox()
        self.stream = RandomStream(context.seed)
        self.generation = 0
        self.population: list[Individual] = []
        self.offspring: list[Individual] = []
        self.targets: list[int] = []  # DE: the member each trial competes with
        self.hall_of_fame = tools.HallOfFame(config.hall_of_fame)
        self.history: list[dict[str, Any]] = []
        self._asked = 0  # offspring handed out so far
        self._bred = False  # the current generation's offspring exist
        self._seen: set[str] = set()
        self._exhausted = False

    def _toolbox(self) -> base.Toolbox:
        """DEAP's toolbox. Its operators draw from the global :mod:`random` module, which
        carries this searcher's stream while it breeds (:class:`RandomStream`)."""
        toolbox = base.Toolbox()
        toolbox.register("select", tools.selTournament, tournsize=self.config.tournament_size)
        toolbox.register("mate", self.variation.mate, rng=random)
        toolbox.register("mutate", self.variation.mutate, rng=random)
        toolbox.register("mutate_gene", self.variation.mutate_gene, rng=random)
        return toolbox

    # -- genomes and prompts ----------------------------------------------------------------

    def prompt(self, individual: Individual) -> Prompt:
        """The prompt an individual of this searcher makes."""
        metadata = {"algorithm": self.config.algorithm, "generation": self.generation}
        prompt = self.space.prompt(individual, metadata)
        assert prompt is not None  # only valid genomes are accepted
        return prompt

    def _accept(self, individual: Individual) -> bool:
        """Take an offspring that makes a valid prompt never asked before."""
        prompt = self.space.prompt(individual)
        if prompt is None or prompt.key in self._seen:
            return False
        self._seen.add(prompt.key)
        return True

    @staticmethod
    def _fitness(outcome: Outcome) -> tuple[float, float]:
        """``(fraction of the split scored, score)``; see :class:`Fitness` for why a candidate
        that racing stopped ranks below every candidate scored on the whole split."""
        return outcome.fraction, outcome.score

    # -- generations ------------------------------------------------------------------------

    def _first_generation(self, rng: Any) -> list[Individual]:
        cfg = self.config
        members = [m for m in map(self.toolbox.clone, self.space.initial) if self._accept(m)]
        for _ in range(cfg.population_size * cfg.max_tries):
            if len(members) >= cfg.population_size:
                break
            individual = self.space.random_individual(rng)
            if self._accept(individual):
                members.append(individual)
        return members[: cfg.population_size]

    def _breed(self) -> None:
        cfg, targets = self.config, []
        with self.stream.active() as rng:
            if not self.population:
                children = self._first_generation(rng)
            elif cfg.algorithm == "ga":
                children = ga_offspring(
                    self.population, cfg.population_size, self.toolbox, rng, self._accept,
                    cfg.cxpb, cfg.mutpb, cfg.max_tries,
                )  # fmt: skip
            else:
                pairs = de_trials(
                    self.population, self.toolbox, rng, self._accept, cfg.cxpb, cfg.mutpb,
                    cfg.max_tries,
                )  # fmt: skip
                targets, children = [i for i, _ in pairs], [t for _, t in pairs]
        self.offspring, self.targets, self._asked, self._bred = children, targets, 0, True
        self._exhausted = not children

    def _advance(self) -> None:
        """All offspring are told: select the next population."""
        cfg, children = self.config, self.offspring
        if not self.population:
            self.population = list(children)
        elif cfg.algorithm == "ga":
            elite = cfg.elite if cfg.elite is not None else cfg.population_size
            self.population = ga_survivors(self.population, children, cfg.population_size, elite)
        else:
            self.population = de_select(
                self.population, list(zip(self.targets, children, strict=True))
            )
        self.hall_of_fame.update(children)
        scores = [ind.fitness.values[1] for ind in self.population if ind.fitness.values[0] == 1]
        self.history.append(
            {
                "generation": self.generation,
                "keys": [self.space.prompt(c).key for c in children],  # type: ignore[union-attr]
                "best": max(scores) if scores else None,
                "mean": sum(scores) / len(scores) if scores else None,
                "full_split": len(scores),
            }
        )
        self.generation += 1
        self.offspring, self.targets, self._asked, self._bred = [], [], 0, False

    # -- the searcher contract --------------------------------------------------------------

    def ask(self, n: int) -> list[Prompt]:
        if not self._bred and not self._exhausted:
            self._breed()
        batch = self.offspring[self._asked : self._asked + n]
        self._asked += len(batch)
        return [self.prompt(individual) for individual in batch]

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        told = {outcome.key: self._fitness(outcome) for outcome in outcomes}
        for individual in self.offspring[: self._asked]:
            key = self.space.prompt(individual).key  # type: ignore[union-attr]
            if not individual.fitness.valid and key in told:
                individual.fitness.values = told[key]
        if self._bred and self.offspring and all(i.fitness.valid for i in self.offspring):
            self._advance()

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def best(self, k: int = 1) -> list[Prompt]:
        """The ``k`` best prompts ever seen (from the hall of fame), best first."""
        return [self.prompt(individual) for individual in self.hall_of_fame[:k]]

    def save(self) -> dict[str, Any]:
        return {
            "algorithm": self.config.algorithm,
            "random": self.stream.to_json(),
            "generation": self.generation,
            "population": [to_json(i) for i in self.population],
            "offspring": [to_json(i) for i in self.offspring],
            "targets": list(self.targets),
            "asked": self._asked,
            "bred": self._bred,
            "hall_of_fame": [to_json(i) for i in self.hall_of_fame],
            "history": self.history,
            "seen": sorted(self._seen),
            "exhausted": self._exhausted,
            "lm": self.lm.state() if self.lm is not None else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("algorithm") != self.config.algorithm:
            raise PromptscoutError(
                f"evolutionary searcher '{self.name}': the saved state's algorithm "
                f"{state.get('algorithm')!r} does not match this searcher's "
                f"{self.config.algorithm!r}; start a new campaign"
            )
        self.stream.load_json(state["random"])
        self.generation = int(state["generation"])
        self.population = [from_json(i) for i in state["population"]]
        self.offspring = [from_json(i) for i in state["offspring"]]
        self.targets = [int(t) for t in state["targets"]]
        self._asked, self._bred = int(state["asked"]), bool(state["bred"])
        # The hall of fame keeps its items best first and their fitnesses worst first.
        self.hall_of_fame.clear()
        self.hall_of_fame.items = [from_json(i) for i in state["hall_of_fame"]]
        self.hall_of_fame.keys = [i.fitness for i in reversed(self.hall_of_fame.items)]
        self.history = list(state["history"])
        self._seen = set(state["seen"])
        self._exhausted = bool(state["exhausted"])
        if self.lm is not None and state.get("lm"):
            self.lm.load_state(state["lm"])
