"""Objectives: built-ins, the registry, and user plug-ins.

A campaign names objectives by registry name (``"accuracy"``), by ``"module:function"``, or by an
entry point in the ``promptscout.objectives`` group. A plug-in function takes an
:class:`ObjectiveInput` and returns a float; it may set ``direction = "minimize"`` as a function
attribute (the default is ``"maximize"``), or be an :class:`Objective` itself.

Example:
    >>> from promptscout.objectives import resolve_objective
    >>> resolve_objective("accuracy").direction
    'maximize'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from promptscout.errors import PromptscoutError
from promptscout.objectives.base import MAXIMIZE, MINIMIZE, Objective, ObjectiveInput
from promptscout.objectives.classification import accuracy, cross_entropy, macro_f1
from promptscout.objectives.generation import exact_match
from promptscout.objectives.regularizers import prompt_length

__all__ = [
    "MAXIMIZE",
    "MINIMIZE",
    "Objective",
    "ObjectiveInput",
    "OBJECTIVES",
    "register_objective",
    "resolve_objective",
    "Ranking",
]

ENTRY_POINT_GROUP = "promptscout.objectives"

OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Add an objective to the registry under its name (a later registration replaces it)."""
    OBJECTIVES[objective.name] = objective
    return objective


register_objective(Objective("accuracy", MAXIMIZE, accuracy))
register_objective(Objective("macro_f1", MAXIMIZE, macro_f1))
register_objective(Objective("cross_entropy", MINIMIZE, cross_entropy))
register_objective(Objective("exact_match", MAXIMIZE, exact_match, ("generation",)))
register_objective(
    Objective("prompt_length", MINIMIZE, prompt_length, ("classification", "generation"))
)


def _as_objective(name: str, value: object) -> Objective:
    if isinstance(value, Objective):
        return value
    if not callable(value):
        raise PromptscoutError(f"objective '{name}' is not a function or Objective")
    direction = getattr(value, "direction", MAXIMIZE)
    if direction not in (MAXIMIZE, MINIMIZE):
        raise PromptscoutError(
            f"objective '{name}' has direction {direction!r}; use 'maximize' or 'minimize'"
        )
    kinds = tuple(getattr(value, "task_kinds", ("classification", "generation")))
    fn: Callable[[ObjectiveInput], float] = value  # type: ignore[assignment]
    return Objective(name, direction, fn, kinds)


def _from_entry_points(name: str) -> Objective | None:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            return _as_objective(name, entry.load())
    return None


def plugin_objective_names() -> list[str]:
    """Names of objectives installed by other packages through entry points."""
    return sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP))


def resolve_objective(spec: str) -> Objective:
    """Find an objective by registry name, entry point name, or ``"module:function"``."""
    if spec in OBJECTIVES:
        return OBJECTIVES[spec]
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import-time failure of user code is a config problem
            raise PromptscoutError(
                f"objective '{spec}': cannot import module '{module_name}' ({exc}); "
                "check the module is on PYTHONPATH"
            ) from None
        if not hasattr(module, attr):
            raise PromptscoutError(f"objective '{spec}': module '{module_name}' has no '{attr}'")
        return _as_objective(spec, getattr(module, attr))
    found = _from_entry_points(spec)
    if found is not None:
        return found
    known = ", ".join(sorted(OBJECTIVES) + plugin_objective_names())
    raise PromptscoutError(
        f"unknown objective '{spec}'; known: {known}, or 'module:function' for your own"
    )


@dataclass(frozen=True)
class Ranking:
    """How candidates are ordered: one number per evaluation, larger is better.

    With no weights the first objective decides; with weights the score is ``sum(w * v)`` with
    minimised objectives negated, e.g. accuracy with weight 1 and prompt_length with weight 0.001
    trades one accuracy point for ten prompt tokens. Plain data, so the leaderboard can rank a
    store without importing plug-in objectives.

    Attributes:
        objectives: ``(name, direction)`` pairs, the first being the primary objective.
        weights: One weight per objective, or empty.
    """

    objectives: tuple[tuple[str, str], ...]
    weights: tuple[float, ...] = ()

    @classmethod
    def of(cls, objectives: Sequence[Objective], weights: Sequence[float] = ()) -> Ranking:
        return cls(tuple((o.name, o.direction) for o in objectives), tuple(weights))

    @property
    def primary(self) -> str:
        return self.objectives[0][0]

    def score(self, values: Mapping[str, float] | None) -> float:
        """The ranking score of objective ``values``; -inf when any needed value is missing."""
        if not values:
            return float("-inf")
        weights = self.weights or (1.0,) + (0.0,) * (len(self.objectives) - 1)
        total = 0.0
        for (name, direction), weight in zip(self.objectives, weights, strict=True):
            if weight == 0.0:
                continue
            if name not in values:
                return float("-inf")
            total += weight * (values[name] if direction == MAXIMIZE else -values[name])
        return total

    def to_dict(self) -> dict[str, object]:
        return {"objectives": [list(o) for o in self.objectives], "weights": list(self.weights)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Ranking:
        objectives = tuple((str(n), str(d)) for n, d in data["objectives"])  # type: ignore[attr-defined]
        return cls(objectives, tuple(float(w) for w in data.get("weights") or ()))  # type: ignore[attr-defined]
