"""The evolutionary searcher's options and the space of parts its genomes are made of."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from promptscout.errors import PromptscoutError
from promptscout.options import OptionError, option, require_non_negative
from promptscout.prompts import TRIGGER, Prompt
from promptscout.searchers.base import SearchContext
from promptscout.searchers.evolutionary.genome import (
    CUE,
    DEMOS,
    FIELD_LABELS,
    INSTRUCTION,
    SEPARATOR,
    TOKENS,
    WORDS,
    Individual,
    make_individual,
)
from promptscout.searchers.parts import (
    PromptParts,
    balanced_demo_pool,
    check_initial_tables,
    compose_template,
)

ALGORITHMS = ("ga", "de")
CROSSOVERS = ("uniform", "one_point")
INITIAL_KEYS = ("instruction", "field_label", "cue", "separator", "label_words", "demos")
# Shown when 'initial' is malformed.
MEMBER_EXAMPLE = '{ instruction = "Classify the review.", cue = "Sentiment:" }'
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def split_phrases(text: str) -> tuple[str, ...]:
    """An instruction's phrases: its sentences (split after ``.``, ``!``, ``?`` and ``;``)."""
    return tuple(p for p in (s.strip() for s in _SENTENCE_END.split(text.strip())) if p)


@dataclass
class EvolutionaryConfig(PromptParts):
    """Options of the evolutionary searcher: the pools of
    :class:`~promptscout.searchers.parts.PromptParts` (``max_demos`` here 2 by default), plus
    its own.

    ``initial`` members are tables with any of ``instruction``, ``field_label`` (for every input
    field), ``cue``, ``separator``, ``label_words`` (one per class) and ``demos``; what a member
    leaves out is the first choice of its pool, and the rest of the first generation is drawn at
    random from the pools. With ``lm_operators`` the campaign's instruct model paraphrases
    phrases and crosses two instructions (EvoPrompt style); output it cannot use falls back to
    the symbolic operator.
    """

    renamed_options: ClassVar[dict[str, str]] = {
        "tokens": "vocabulary",
        "max_tokens": "max_triggers",
    }

    max_demos: int = option(2, help="Most demonstrations in a prompt (0: zero-shot only).")
    algorithm: str = option("ga", help='"ga" (genetic algorithm) or "de" (differential evolution).')
    population_size: int = option(8, help="Prompts per generation (best a multiple of batch_size).")
    initial: list[dict[str, Any]] = option(
        [],
        help="Hand-written members of the first generation: tables of instruction, "
        "field_label, cue, separator, label_words and demos.",
    )
    init_demos: int = option(
        0, help="Most demonstrations in a randomly drawn first-generation member."
    )
    demo_pool: int = option(
        16, help="Training examples (class-balanced, seeded) that may be demonstrations."
    )
    phrases: list[str] = option(
        [],
        help="Extra phrases mutation may add to an instruction (the instructions' own always may).",
    )
    max_phrases: int = option(3, help="Most phrases in an instruction.")
    vocabulary: list[str] = option(
        [],
        help="Words token substitution puts into instructions and free [T] slots (default: "
        "the words of the pools and the label-word candidates).",
    )
    max_triggers: int = option(
        0, help="Most free [T] slots before the cue, filled from vocabulary (0: none)."
    )
    crossover: str = option("uniform", help='GA crossover of the parts: "uniform" or "one_point".')
    cxpb: float = option(
        0.5, help="GA: probability that two parents cross; DE: the crossover rate CR."
    )
    mutpb: float = option(
        0.8,
        help="GA: probability that a child mutates; DE: that a part taken from the donors does.",
    )
    tournament_size: int = option(3, help="GA: parents are the best of this many drawn.")
    elite: int | None = option(
        None,
        help="GA: best parents competing with the offspring for the next generation (default: "
        "all, EvoPrompt's rule; 0: the offspring replace them).",
    )
    hall_of_fame: int = option(5, help="Best prompts ever seen that the hall of fame keeps.")
    lm_operators: bool = option(
        False, help="Let the campaign's instruct model paraphrase and cross instructions."
    )
    lm_max_new_tokens: int = option(32, help="Most tokens the model writes per operator call.")
    max_tries: int = option(
        50, help="Mutations tried per offspring before it is given up as not new."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_parts()
        if self.algorithm not in ALGORITHMS:
            raise OptionError("algorithm", f"must be 'ga' or 'de', got {self.algorithm!r}")
        if self.crossover not in CROSSOVERS:
            raise OptionError(
                "crossover", f"must be 'uniform' or 'one_point', got {self.crossover!r}"
            )
        if self.population_size < 2:
            raise OptionError("population_size", "must be at least 2")
        for key in ("cxpb", "mutpb"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise OptionError(key, "must be between 0 and 1")
        if self.elite is None:
            self.elite = self.population_size
        require_non_negative(self, ("init_demos", "max_triggers", "elite"))
        for key in ("demo_pool", "max_phrases", "tournament_size", "hall_of_fame", "max_tries"):
            if getattr(self, key) < 1:
                raise OptionError(key, "must be at least 1")
        if self.lm_max_new_tokens < 4:
            raise OptionError("lm_max_new_tokens", "must be at least 4")
        check_initial_tables(self.initial, INITIAL_KEYS, MEMBER_EXAMPLE)


class PartSpace:
    """The pools a genome's parts come from, random genomes, and the prompt a genome makes."""

    def __init__(self, config: EvolutionaryConfig, context: SearchContext) -> None:
        task = context.task
        self.fields = task.input_fields
        self.instructions = [split_phrases(i) for i in config.instructions]
        phrases = [p for i in self.instructions for p in i] + [
            p for extra in config.phrases for p in split_phrases(extra)
        ]
        self.phrases = list(dict.fromkeys(phrases))
        self.field_labels, self.cues = list(config.field_labels), list(config.cues)
        self.separators = list(config.separators)
        self.words = config.word_choices("evolutionary", context)
        self.max_demos = config.max_demos if task.train else 0
        self.init_demos = min(config.init_demos, self.max_demos)
        self.demo_pool = balanced_demo_pool(context, config.demo_pool) if self.max_demos else []
        self.max_phrases, self.max_triggers = config.max_phrases, config.max_triggers
        self.vocabulary = list(dict.fromkeys(config.vocabulary)) or self._pool_words()
        self.initial = [self._seed(member, context) for member in config.initial]

    def _pool_words(self) -> list[str]:
        candidates = [w for ws in self.words for w in ws]
        texts = [*self.phrases, *self.field_labels, *self.cues, *candidates]
        return list(dict.fromkeys(w for text in texts for w in _WORD.findall(text)))

    def _seed(self, member: dict[str, Any], context: SearchContext) -> Individual:
        """A hand-written first-generation member (see :attr:`EvolutionaryConfig.initial`)."""
        where = "evolutionary searcher: 'initial'"
        words = [str(w) for w in member.get("label_words", [ws[0] for ws in self.words])]
        if len(words) != len(self.words):
            raise PromptscoutError(
                f"{where} label_words needs {len(self.words)} words, one per class, got {words}"
            )
        demos = [str(d) for d in member.get("demos", [])]
        train = {e.id for e in context.task.train}
        for demo in demos:
            if demo not in train:
                raise PromptscoutError(f"{where} demo '{demo}' is not a train id")
        label = str(member.get("field_label", self.field_labels[0]))
        individual = make_individual(
            instruction=split_phrases(str(member.get("instruction", ""))),
            demos=demos,
            field_labels=[label] * len(self.fields),
            separator=str(member.get("separator", self.separators[0])),
            cue=str(member.get("cue", self.cues[0])),
            words=words,
        )
        if self.prompt(individual) is None:
            raise PromptscoutError(f"{where} member {member} makes no valid prompt")
        return individual

    def random_individual(self, rng: Any) -> Individual:
        """A first-generation member drawn from the pools (label words may repeat: check with
        :meth:`prompt`)."""
        n_demos = rng.randint(0, self.init_demos) if self.demo_pool else 0
        return make_individual(
            instruction=rng.choice(self.instructions),
            demos=rng.sample(self.demo_pool, min(n_demos, len(self.demo_pool))),
            field_labels=[rng.choice(self.field_labels) for _ in self.fields],
            separator=rng.choice(self.separators),
            cue=rng.choice(self.cues),
            words=[rng.choice(ws) for ws in self.words],
        )

    def template(self, individual: Individual) -> str:
        """The template: field blocks, then the free tokens' ``[T]`` slots and the cue."""
        slots = [TRIGGER] * len(individual[TOKENS])
        cue = " ".join([*slots, individual[CUE]] if individual[CUE] else slots)
        labels = dict(zip(self.fields, individual[FIELD_LABELS], strict=True))
        return compose_template(labels, cue, individual[SEPARATOR])

    def prompt(
        self, individual: Individual, metadata: dict[str, Any] | None = None
    ) -> Prompt | None:
        """The prompt a genome makes; None when it is not a valid prompt (e.g. label words
        repeated across classes)."""
        try:
            return Prompt(
                self.template(individual),
                individual[WORDS],
                instruction=" ".join(individual[INSTRUCTION]),
                demos=individual[DEMOS],
                triggers=individual[TOKENS],
                separator="\n\n" if individual[DEMOS] else "\n",
                metadata=dict(metadata or {}),
            )
        except (PromptscoutError, ValueError):
            return None
