"""Variation operators on genomes: phrase-level edits, token substitution, part resampling and
crossover of parts.

Every operator changes an individual in place and returns whether it changed anything; none
can make an invalid genome (label words stay distinct across classes, counts stay within
``max_phrases``, ``max_demos`` and ``max_triggers``). Draws come from the ``rng`` passed in: the
searcher passes the :mod:`random` module while its stream is active
(:class:`~promptscout.searchers.evolutionary.genome.RandomStream`), the generator DEAP's own
crossover operators draw from too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from deap import tools

from promptscout.searchers.evolutionary.genome import (
    CUE,
    DEMOS,
    FIELD_LABELS,
    INSTRUCTION,
    SEPARATOR,
    TOKENS,
    WORDS,
    Individual,
)
from promptscout.searchers.evolutionary.lm_operators import LMOperators
from promptscout.searchers.evolutionary.space import PartSpace, split_phrases

Operator = Callable[[Individual, Any], bool]
_CORE = re.compile(r"^(\W*)(.*?)(\W*)$")


def _set(individual: Individual, gene: int, value: Any) -> bool:
    changed = individual[gene] != value
    individual[gene] = value
    return changed


def _other(rng: Any, pool: list[Any], current: Any) -> Any | None:
    """A pool entry other than ``current``, or None if there is none."""
    options = [p for p in pool if p != current]
    return rng.choice(options) if options else None


class Variation:
    """The operators of a :class:`PartSpace`, with optional LM operators.

    Args:
        space: Where parts come from.
        crossover: ``"uniform"`` or ``"one_point"`` (DEAP's ``cxUniform`` / ``cxOnePoint``).
        lm: Model-written paraphrases and instruction crossovers; None for symbolic only.
    """

    def __init__(self, space: PartSpace, crossover: str = "uniform", lm: LMOperators | None = None):
        self.space, self.crossover, self.lm = space, crossover, lm
        s = space
        self.operators: dict[int, list[Operator]] = {
            INSTRUCTION: [
                self.delete_phrase,
                self.swap_phrases,
                self.add_phrase,
                self.paraphrase,
                self.substitute_word,
            ],
            DEMOS: [self.add_demo, self.drop_demo, self.replace_demo, self.swap_demos],
            FIELD_LABELS: [self.resample_field_label],
            SEPARATOR: [self.resample_separator],
            TOKENS: [self.add_token, self.drop_token, self.substitute_token],
            CUE: [self.resample_cue],
            WORDS: [self.resample_word],
        }
        # Genes some operator can change at all in this space.
        self.mutable = [
            gene
            for gene, can in (
                (INSTRUCTION, bool(s.phrases or s.vocabulary)),
                (DEMOS, bool(s.max_demos and s.demo_pool)),
                (FIELD_LABELS, len(s.field_labels) > 1),
                (SEPARATOR, len(s.separators) > 1),
                (TOKENS, bool(s.max_triggers and s.vocabulary)),
                (CUE, len(s.cues) > 1),
                (WORDS, any(len(ws) > 1 for ws in s.words)),
            )
            if can
        ]

    # -- mutation ---------------------------------------------------------------------------

    def mutate(self, individual: Individual, rng: Any) -> tuple[Individual]:
        """One edit of one part (genes tried in random order until one changes): DEAP's
        mutation signature."""
        for gene in rng.sample(self.mutable, len(self.mutable)):
            if self.mutate_gene(individual, gene, rng):
                break
        return (individual,)

    def mutate_gene(self, individual: Individual, gene: int, rng: Any) -> bool:
        """One edit of part ``gene`` (its operators tried in random order until one changes it)."""
        operators = self.operators[gene]
        return any(operator(individual, rng) for operator in rng.sample(operators, len(operators)))

    # instruction phrases

    def delete_phrase(self, ind: Individual, rng: Any) -> bool:
        phrases = list(ind[INSTRUCTION])
        if not phrases:
            return False
        del phrases[rng.randrange(len(phrases))]
        return _set(ind, INSTRUCTION, tuple(phrases))

    def swap_phrases(self, ind: Individual, rng: Any) -> bool:
        phrases = list(ind[INSTRUCTION])
        if len(phrases) < 2:
            return False
        i, j = rng.sample(range(len(phrases)), 2)
        phrases[i], phrases[j] = phrases[j], phrases[i]
        return _set(ind, INSTRUCTION, tuple(phrases))

    def add_phrase(self, ind: Individual, rng: Any) -> bool:
        phrases = list(ind[INSTRUCTION])
        options = [p for p in self.space.phrases if p not in phrases]
        if len(phrases) >= self.space.max_phrases or not options:
            return False
        phrases.insert(rng.randint(0, len(phrases)), rng.choice(options))
        return _set(ind, INSTRUCTION, tuple(phrases))

    def paraphrase(self, ind: Individual, rng: Any) -> bool:
        """A phrase in other words: the model's paraphrase with LM operators on, else (or when
        its answer is unusable) another phrase of the pool in its place."""
        phrases = list(ind[INSTRUCTION])
        if not phrases:
            return False
        i = rng.randrange(len(phrases))
        new = self.lm.paraphrase(phrases[i]) if self.lm is not None else None
        if new is None:
            new = _other(rng, [p for p in self.space.phrases if p not in phrases], phrases[i])
        if new is None:
            return False
        phrases[i : i + 1] = split_phrases(new)
        return _set(ind, INSTRUCTION, tuple(phrases[: self.space.max_phrases]))

    def substitute_word(self, ind: Individual, rng: Any) -> bool:
        """Token substitution inside the instruction: one word becomes a vocabulary word
        (punctuation around it and its capital kept)."""
        phrases = list(ind[INSTRUCTION])
        if not phrases or not self.space.vocabulary:
            return False
        i = rng.randrange(len(phrases))
        words = phrases[i].split(" ")
        j = rng.randrange(len(words))
        lead, core, tail = _CORE.match(words[j]).groups()  # type: ignore[union-attr]
        new = _other(rng, self.space.vocabulary, core)
        if not core or new is None:
            return False
        if core[0].isupper():
            new = new[0].upper() + new[1:]
        words[j] = lead + new + tail
        phrases[i] = " ".join(words)
        return _set(ind, INSTRUCTION, tuple(phrases))

    # demonstrations

    def _unused_demos(self, ind: Individual) -> list[str]:
        return [d for d in self.space.demo_pool if d not in ind[DEMOS]]

    def add_demo(self, ind: Individual, rng: Any) -> bool:
        demos, unused = list(ind[DEMOS]), self._unused_demos(ind)
        if len(demos) >= self.space.max_demos or not unused:
            return False
        demos.insert(rng.randint(0, len(demos)), rng.choice(unused))
        return _set(ind, DEMOS, tuple(demos))

    def drop_demo(self, ind: Individual, rng: Any) -> bool:
        demos = list(ind[DEMOS])
        if not demos:
            return False
        del demos[rng.randrange(len(demos))]
        return _set(ind, DEMOS, tuple(demos))

    def replace_demo(self, ind: Individual, rng: Any) -> bool:
        demos, unused = list(ind[DEMOS]), self._unused_demos(ind)
        if not demos or not unused:
            return False
        demos[rng.randrange(len(demos))] = rng.choice(unused)
        return _set(ind, DEMOS, tuple(demos))

    def swap_demos(self, ind: Individual, rng: Any) -> bool:
        demos = list(ind[DEMOS])
        if len(demos) < 2:
            return False
        i, j = rng.sample(range(len(demos)), 2)
        demos[i], demos[j] = demos[j], demos[i]
        return _set(ind, DEMOS, tuple(demos))

    # free tokens

    def add_token(self, ind: Individual, rng: Any) -> bool:
        tokens = list(ind[TOKENS])
        if len(tokens) >= self.space.max_triggers or not self.space.vocabulary:
            return False
        tokens.insert(rng.randint(0, len(tokens)), rng.choice(self.space.vocabulary))
        return _set(ind, TOKENS, tuple(tokens))

    def drop_token(self, ind: Individual, rng: Any) -> bool:
        tokens = list(ind[TOKENS])
        if not tokens:
            return False
        del tokens[rng.randrange(len(tokens))]
        return _set(ind, TOKENS, tuple(tokens))

    def substitute_token(self, ind: Individual, rng: Any) -> bool:
        tokens = list(ind[TOKENS])
        if not tokens:
            return False
        i = rng.randrange(len(tokens))
        new = _other(rng, self.space.vocabulary, tokens[i])
        if new is None:
            return False
        tokens[i] = new
        return _set(ind, TOKENS, tuple(tokens))

    # format and verbalizer

    def resample_field_label(self, ind: Individual, rng: Any) -> bool:
        labels = list(ind[FIELD_LABELS])
        i = rng.randrange(len(labels))
        new = _other(rng, self.space.field_labels, labels[i])
        if new is None:
            return False
        labels[i] = new
        return _set(ind, FIELD_LABELS, tuple(labels))

    def resample_separator(self, ind: Individual, rng: Any) -> bool:
        new = _other(rng, self.space.separators, ind[SEPARATOR])
        return new is not None and _set(ind, SEPARATOR, new)

    def resample_cue(self, ind: Individual, rng: Any) -> bool:
        new = _other(rng, self.space.cues, ind[CUE])
        return new is not None and _set(ind, CUE, new)

    def resample_word(self, ind: Individual, rng: Any) -> bool:
        """One class's label word becomes another candidate no other class uses."""
        words = list(ind[WORDS])
        classes = [i for i, ws in enumerate(self.space.words) if len(ws) > 1]
        for i in rng.sample(classes, len(classes)):
            options = [w for w in self.space.words[i] if w not in words]
            if options:
                words[i] = rng.choice(options)
                return _set(ind, WORDS, tuple(words))
        return False

    # -- crossover --------------------------------------------------------------------------

    def mate(
        self, first: Individual, second: Individual, rng: Any
    ) -> tuple[Individual, Individual]:
        """Crossover of parts (DEAP's uniform or one-point crossover, in place); with LM
        operators on, the first child's instruction is the model's cross of both parents'
        instructions when its answer is usable."""
        instructions = " ".join(first[INSTRUCTION]), " ".join(second[INSTRUCTION])
        if self.crossover == "uniform":
            tools.cxUniform(first, second, indpb=0.5)
        else:
            tools.cxOnePoint(first, second)
        if self.lm is not None and all(instructions) and instructions[0] != instructions[1]:
            new = self.lm.cross(*instructions)
            if new is not None:
                first[INSTRUCTION] = split_phrases(new)[: self.space.max_phrases]
        return first, second
