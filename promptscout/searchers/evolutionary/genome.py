"""The genome: a prompt as a list of parts, its DEAP fitness, and its JSON form.

An individual is a plain ``list`` subclass holding one value per part of :data:`GENES` (tuples
and strings, so individuals compare and copy cheaply) and a DEAP fitness. Both classes are
defined here, not with DEAP's global ``creator``, and never leave this process: evaluators only
ever see the :class:`~promptscout.prompts.Prompt` an individual makes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from deap import base

# The parts, in crossover order: one-point crossover keeps neighbours together, so the
# context (instruction, demonstrations), the format (field labels, separator, free tokens, cue)
# and the verbalizer (label words) tend to travel as blocks.
GENES = ("instruction", "demos", "field_labels", "separator", "tokens", "cue", "words")
INSTRUCTION, DEMOS, FIELD_LABELS, SEPARATOR, TOKENS, CUE, WORDS = range(len(GENES))
TUPLE_GENES = frozenset({INSTRUCTION, DEMOS, FIELD_LABELS, TOKENS, WORDS})


class Fitness(base.Fitness):
    """``(fraction of the search split scored, ranking score)``, both maximised.

    DEAP compares fitnesses lexicographically, so a candidate scored on the whole split beats
    every candidate that racing stopped early, and among stopped candidates the one that got
    further beats the others; the score only breaks ties within the same depth. A stopped
    candidate was clearly behind the incumbent on its minibatch, so its (noisy, small-sample)
    partial score must never outrank a full-split measurement.
    """

    weights = (1.0, 1.0)


class Individual(list):  # type: ignore[type-arg]
    """A genome: one value per :data:`GENES` entry, and a :class:`Fitness`."""

    def __init__(self, genes: Sequence[Any] = ()) -> None:
        super().__init__(genes)
        self.fitness = Fitness()


def make_individual(
    instruction: Sequence[str] = (),
    demos: Sequence[str] = (),
    field_labels: Sequence[str] = (),
    separator: str = "\n",
    tokens: Sequence[str] = (),
    cue: str = "",
    words: Sequence[str] = (),
) -> Individual:
    """An individual from its parts (sequences become tuples)."""
    return Individual(
        [tuple(instruction), tuple(demos), tuple(field_labels), separator, tuple(tokens), cue,
         tuple(words)]
    )  # fmt: skip


def to_json(individual: Individual) -> dict[str, Any]:
    """JSON-ready form: the genes, and the fitness values (None: not evaluated; a missing
    score is stored as None because JSON has no infinity)."""
    fitness = None
    if individual.fitness.valid:
        depth, score = individual.fitness.values
        fitness = [depth, score if math.isfinite(score) else None]
    return {
        "genes": [list(g) if isinstance(g, tuple) else g for g in individual],
        "fitness": fitness,
    }


def from_json(data: dict[str, Any]) -> Individual:
    """Read back :func:`to_json` output."""
    genes = [tuple(g) if i in TUPLE_GENES else g for i, g in enumerate(data["genes"])]
    individual = Individual(genes)
    if data.get("fitness") is not None:
        depth, score = data["fitness"]
        individual.fitness.values = (depth, float("-inf") if score is None else score)
    return individual


class RandomStream:
    """This searcher's random stream, shared with DEAP.

    DEAP's operators draw from the global :mod:`random` module and take no generator, so
    :meth:`active` lends the global generator this stream's state for the duration of a block
    and takes the advanced state back at the end (restoring what the global generator held).
    Inside the block every draw, DEAP's and ours, comes from the one stream it yields.
    """

    def __init__(self, seed: int) -> None:
        self.state: tuple[Any, ...] = random.Random(seed).getstate()

    @contextmanager
    def active(self) -> Iterator[Any]:
        saved = random.getstate()
        random.setstate(self.state)
        try:
            yield random
        finally:
            self.state = random.getstate()
            random.setstate(saved)

    def to_json(self) -> list[Any]:
        version, internal, gauss = self.state
        return [version, list(internal), gauss]

    def load_json(self, data: Sequence[Any]) -> None:
        version, internal, gauss = data
        self.state = (version, tuple(internal), gauss)
