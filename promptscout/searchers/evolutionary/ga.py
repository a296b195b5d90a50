"""The genetic algorithm (EvoPrompt's GA, with DEAP's operators).

A generation: ``size`` children, each from two parents picked by tournament, crossed with
probability ``cxpb`` and mutated with probability ``mutpb`` (and mutated again until it is a
prompt never asked before). The next population is the best ``size`` of the children and the
``elite`` best parents: with every parent in (the default) that is EvoPrompt's rule, and the
best prompt found is never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deap import base, tools

from promptscout.searchers.evolutionary.genome import Individual


def ga_offspring(
    population: list[Individual],
    size: int,
    toolbox: base.Toolbox,
    rng: Any,
    accept: Callable[[Individual], bool],
    cxpb: float,
    mutpb: float,
    max_tries: int,
) -> list[Individual]:
    """Up to ``size`` new children of ``population`` (fewer when the space runs dry).

    Args:
        population: Evaluated parents.
        size: Children wanted.
        toolbox: ``select``, ``mate``, ``mutate`` and ``clone``.
        rng: The active random stream.
        accept: Takes a child that makes a prompt never asked before (and records it).
        cxpb: Probability that two parents cross.
        mutpb: Probability that a child mutates.
        max_tries: Extra mutations a child gets to become new before it is dropped.
    """
    children: list[Individual] = []
    for _ in range(size * max_tries):
        if len(children) == size:
            break
        first, second = (toolbox.clone(p) for p in toolbox.select(population, 2))
        if rng.random() < cxpb:
            toolbox.mate(first, second)
        child = first
        del child.fitness.values
        if rng.random() < mutpb:
            toolbox.mutate(child)
        for _ in range(max_tries):
            if accept(child):
                children.append(child)
                break
            toolbox.mutate(child)
    return children


def ga_survivors(
    parents: list[Individual], children: list[Individual], size: int, elite: int
) -> list[Individual]:
    """The next population: the best ``size`` of the children and the ``elite`` best parents."""
    return tools.selBest(children + tools.selBest(parents, elite), size)
