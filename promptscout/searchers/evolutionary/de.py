"""Differential evolution on prompt parts (EvoPrompt's DE).

Numeric DE moves a vector by the difference of two others. On prompts the difference of two
donors is the set of parts where they differ: for each member of the population (the target),

1. two donors are drawn from the other members, and the mutant starts as the best member;
2. every part where the donors differ is taken from the first donor into the mutant and, with
   probability ``mutpb``, mutated further (EvoPrompt mutates the differing parts);
3. the trial takes each part where the mutant differs from the target with probability ``cr``
   (at least one), the rest from the target (binomial crossover), and is mutated until it is a
   prompt never asked before;
4. once evaluated, the trial replaces its target if it is at least as fit (one-to-one
   selection), so the population never gets worse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deap import base, tools

from promptscout.searchers.evolutionary.genome import GENES, Individual


def de_trials(
    population: list[Individual],
    toolbox: base.Toolbox,
    rng: Any,
    accept: Callable[[Individual], bool],
    cr: float,
    mutpb: float,
    max_tries: int,
) -> list[tuple[int, Individual]]:
    """``(target index, trial)`` pairs, one per target that got a new trial.

    Args:
        population: Evaluated members.
        toolbox: ``mutate``, ``mutate_gene`` (individual, gene index) and ``clone``.
        rng: The active random stream.
        accept: Takes a trial that makes a prompt never asked before (and records it).
        cr: Crossover rate: probability that a part of the mutant enters the trial.
        mutpb: Probability that a part taken from a donor is mutated further.
        max_tries: Extra mutations a trial gets to become new before it is dropped.
    """
    best = tools.selBest(population, 1)[0]
    trials = []
    for index, target in enumerate(population):
        others = [m for i, m in enumerate(population) if i != index]
        if len(others) >= 2:
            first, second = rng.sample(others, 2)
        else:  # a tiny population: donors may coincide, and the trial comes from mutation
            first, second = rng.choice(population), rng.choice(population)
        mutant = toolbox.clone(best)
        for gene in range(len(GENES)):
            if first[gene] != second[gene]:
                mutant[gene] = first[gene]
                if rng.random() < mutpb:
                    toolbox.mutate_gene(mutant, gene)
        trial = toolbox.clone(target)
        del trial.fitness.values
        differing = [g for g in range(len(GENES)) if mutant[g] != target[g]]
        forced = rng.choice(differing) if differing else None
        for gene in differing:
            if gene == forced or rng.random() < cr:
                trial[gene] = mutant[gene]
        for _ in range(max_tries + 1):
            if accept(trial):
                trials.append((index, trial))
                break
            toolbox.mutate(trial)
    return trials


def de_select(
    population: list[Individual], trials: list[tuple[int, Individual]]
) -> list[Individual]:
    """Each evaluated trial replaces its target when at least as fit."""
    survivors = list(population)
    for index, trial in trials:
        if trial.fitness >= survivors[index].fitness:
            survivors[index] = trial
    return survivors
