"""The Bayesian searcher's options and its categorical prompt space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from promptscout.errors import PromptscoutError
from promptscout.options import OptionError, option, require_non_negative
from promptscout.prompts import Prompt
from promptscout.searchers.base import SearchContext
from promptscout.searchers.parts import (
    NEAREST_HELP,
    READOUTS_HELP,
    PromptParts,
    balanced_demo_pool,
    check_initial_tables,
    check_readouts,
    compose_template,
    readout_fields,
)

INITIAL_KEYS = ("template", "instruction", "label_words", "demos", "readout")
# Shown when 'initial' is malformed.
TABLE_EXAMPLE = '{ template = "{text} It was", label_words = ["bad", "good"] }'

# (parameter name, number of choices) -> the chosen index
Chooser = Callable[[str, int], int]


@dataclass
class BayesianConfig(PromptParts):
    """Options of the Bayesian searcher: the pools of
    :class:`~promptscout.searchers.parts.PromptParts` (instructions, field labels, cues and
    separators of composed templates, label-word candidates, ``max_demos``, here 2 by default),
    plus its own.

    Each ``initial`` table is enqueued as an early trial, in order (the first is trial 0). A
    table may name any of ``template``, ``instruction``, ``label_words`` (one per class) and
    ``demos`` (training example ids); what it leaves out is the first choice of that pool, and
    choices it names that the pools lack are added to them. Without ``initial`` the first trial
    is the first choice of every part.
    """

    renamed_options: ClassVar[dict[str, str]] = {"start": "initial"}

    templates: list[str] = option([], help="Hand-written templates with {field} placeholders.")
    compose: bool | None = option(
        None,
        help="Also offer templates composed from field_labels, cues and separators (default: "
        "only when templates is empty).",
    )
    max_demos: int = option(2, help="Most demonstrations in a prompt (0: zero-shot only).")
    demo_pool: int = option(
        16, help="Training examples (class-balanced, seeded) that may be demonstrations."
    )
    initial: list[dict[str, Any]] = option(
        [],
        help="The first trials, in order: tables of template, instruction, label_words, demos "
        "and readout (default: the first choice of every part).",
    )
    readouts: list[str] = option([""], help=READOUTS_HELP)
    nearest_demos: int = option(0, help=NEAREST_HELP)
    multi_objective: bool = option(
        False, help="Also minimise the prompt's length in tokens, with a Pareto front."
    )
    n_startup_trials: int = option(10, help="Trials sampled at random before TPE takes over.")
    max_tries: int = option(
        20,
        help="Trials per asked prompt that may repeat known prompts before an unseen prompt is "
        "drawn at random.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.compose is None:
            self.compose = not self.templates
        if not self.templates and not self.compose:
            raise OptionError(None, "give 'templates', or leave 'compose' on to build them")
        needed = ["instructions"] + (["field_labels", "cues", "separators"] if self.compose else [])
        self.check_parts(needed)
        check_readouts(self.readouts)
        if self.demo_pool < 1:
            raise OptionError("demo_pool", "must be at least 1")
        require_non_negative(self, ["n_startup_trials"])
        if self.max_tries < 1:
            raise OptionError("max_tries", "must be at least 1")
        check_initial_tables(self.initial, INITIAL_KEYS, TABLE_EXAMPLE)


def _first(pool: list[str], value: str) -> int:
    """Index of ``value`` in ``pool``, putting it first when it is not there."""
    if value not in pool:
        pool.insert(0, value)
    return pool.index(value)


class PromptSpace:
    """The categorical space: which parameters a prompt has, their choices, and the prompt an
    assignment of indices makes.

    Parameters, in the order they are chosen (later ones only when active): ``template``; for a
    composed template ``separator``, ``field_label_<field>`` per input field and ``cue``;
    ``instruction``; ``label_word_<i>`` per class; ``nearest`` (with ``nearest_demos``: 1 shows
    the nearest training examples instead of fixed demonstrations); ``n_demos`` and ``demo_<i>``
    per slot.
    """

    def __init__(self, config: BayesianConfig, context: SearchContext) -> None:
        task = context.task
        self.fields = task.input_fields
        self.templates = list(config.templates)
        self.compose = bool(config.compose)
        self.field_labels, self.cues = list(config.field_labels), list(config.cues)
        self.separators = list(config.separators)
        self.instructions = list(config.instructions)
        probe = config.templates[0] if config.templates else config.probe_template(context)
        self.words = config.word_choices("bayesian", context, probe)
        self.max_demos = config.max_demos if task.train else 0
        self.demo_pool = balanced_demo_pool(context, config.demo_pool) if self.max_demos else []
        self.nearest = config.nearest_demos if task.train else 0
        self.readouts = list(config.readouts)
        self.initial = self._initial_params(config.initial or [{}], context)
        for template in self.templates:  # a precise error now rather than failed trials later
            Prompt(template, context.label_words).check_task(task)
        if any(self.prompt(params) is None for params in self.initial):
            raise PromptscoutError(
                "bayesian searcher: an initial prompt's label words repeat a word across classes"
            )

    def _initial_params(
        self, tables: list[dict[str, Any]], context: SearchContext
    ) -> list[dict[str, int]]:
        """The assignments of the ``initial`` tables. Choices they name that the pools lack are
        put first in them (all tables' before any assignment is made); a part a table leaves
        out takes the pool's first choice as configured."""
        sizes = {name: len(pool) for name, pool in self._pools().items()}
        for table in tables:
            self._named(table, context)
        added = {name: len(pool) - sizes[name] for name, pool in self._pools().items()}
        assignments = []
        for table in tables:
            fixed = {**added, **self._named(table, context)}
            assignments.append(self.assign(lambda name, n, fixed=fixed: fixed.get(name, 0)))
        return assignments

    def _pools(self) -> dict[str, list[str]]:
        """The pools initial tables may add to, by the parameter that indexes them."""
        words = {f"label_word_{i}": ws for i, ws in enumerate(self.words)}
        pools = {"template": self.templates, "instruction": self.instructions, **words}
        return {**pools, "readout": self.readouts}

    def _named(self, table: dict[str, Any], context: SearchContext) -> dict[str, int]:
        """The indices of the choices ``table`` names (adding those the pools lack)."""
        fixed: dict[str, int] = {}
        if "template" in table:
            fixed["template"] = _first(self.templates, str(table["template"]))
        if "instruction" in table:
            fixed["instruction"] = _first(self.instructions, str(table["instruction"]))
        if "label_words" in table:
            words = list(table["label_words"])
            if len(words) != len(self.words):
                raise PromptscoutError(
                    f"bayesian searcher: initial 'label_words' needs {len(self.words)} words, "
                    f"one per class, got {words}"
                )
            for i, word in enumerate(words):
                fixed[f"label_word_{i}"] = _first(self.words[i], str(word))
        if table.get("demos"):
            demos = [str(d) for d in table["demos"]]
            train = {e.id for e in context.task.train}
            if any(d not in train for d in demos):
                bad = next(d for d in demos if d not in train)
                raise PromptscoutError(f"bayesian searcher: initial demo '{bad}' is not a train id")
            if len(demos) > self.max_demos:
                raise PromptscoutError(
                    f"bayesian searcher: an initial table has {len(demos)} demos but max_demos "
                    f"is {self.max_demos}"
                )
            fixed["n_demos"] = len(demos)
            for i, demo in enumerate(demos):
                fixed[f"demo_{i}"] = _first(self.demo_pool, demo)
        if "readout" in table:
            check_readouts([str(table["readout"])])
            fixed["readout"] = _first(self.readouts, str(table["readout"]))
        return fixed

    @property
    def n_templates(self) -> int:
        return len(self.templates) + int(self.compose)

    def assign(self, choose: Chooser) -> dict[str, int]:
        """Walk the space in its fixed order, asking ``choose`` for each active parameter."""
        params: dict[str, int] = {}

        def pick(name: str, n: int) -> int:
            params[name] = int(choose(name, n))
            return params[name]

        if pick("template", self.n_templates) == len(self.templates):
            pick("separator", len(self.separators))
            for name in self.fields:
                pick(f"field_label_{name}", len(self.field_labels))
            pick("cue", len(self.cues))
        pick("instruction", len(self.instructions))
        for i, words in enumerate(self.words):
            pick(f"label_word_{i}", len(words))
        # With nearest-neighbour demonstrations on, a prompt shows them or fixed ones.
        nearest = bool(pick("nearest", 2)) if self.nearest else False
        if self.max_demos and not nearest:
            for i in range(pick("n_demos", self.max_demos + 1)):
                pick(f"demo_{i}", len(self.demo_pool))
        if len(self.readouts) > 1:  # a parameter only when there is a choice
            pick("readout", len(self.readouts))
        return params

    def sizes(self, params: dict[str, int]) -> dict[str, int]:
        """Number of choices of each parameter of an assignment."""
        sizes: dict[str, int] = {}

        def record(name: str, n: int) -> int:
            sizes[name] = n
            return params[name]

        self.assign(record)
        return sizes

    def template(self, params: dict[str, int]) -> str:
        index = params["template"]
        if index < len(self.templates):
            return self.templates[index]
        labels = {name: self.field_labels[params[f"field_label_{name}"]] for name in self.fields}
        return compose_template(
            labels, self.cues[params["cue"]], self.separators[params["separator"]]
        )

    def prompt(
        self, params: dict[str, int], metadata: dict[str, Any] | None = None
    ) -> Prompt | None:
        """The prompt of an assignment; None if it is not a valid prompt (label words that
        repeat across classes, or parameters missing)."""
        try:
            words = tuple(ws[params[f"label_word_{i}"]] for i, ws in enumerate(self.words))
            if len(set(words)) < len(words):
                return None
            demos: list[str] = []
            nearest = self.nearest if params.get("nearest") else 0
            for i in range(0 if nearest else params.get("n_demos", 0)):
                demo = self.demo_pool[params[f"demo_{i}"]]
                if demo not in demos:  # a repeated slot adds nothing: the prompt has fewer demos
                    demos.append(demo)
            return Prompt(
                self.template(params),
                words,
                instruction=self.instructions[params["instruction"]],
                demos=tuple(demos),
                metadata=dict(metadata or {}),
                nearest_demos=nearest,
                **readout_fields(self.readouts[params.get("readout", 0)]),
            )
        except (KeyError, IndexError):
            return None

    def choices(self) -> dict[str, list[str]]:
        """What each index means, for people reading the study (e.g. in optuna-dashboard)."""
        choices = {
            "template": self.templates + (["<composed>"] if self.compose else []),
            "instruction": self.instructions,
            **{f"label_word_{i}": ws for i, ws in enumerate(self.words)},
        }
        if self.compose:
            choices.update(separator=self.separators, cue=self.cues)
            choices.update({f"field_label_{n}": self.field_labels for n in self.fields})
        if self.max_demos:
            choices["demo"] = self.demo_pool
        return choices
