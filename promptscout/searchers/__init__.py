"""Searchers: the registry, built-ins, and third-party plug-ins.

A searcher is a config dataclass plus a :class:`Searcher` subclass plus one registration line.
Other packages add searchers through the ``promptscout.searchers`` entry point group, whose
entries point at the :class:`Searcher` subclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.options import read_options
from promptscout.searchers.autoprompt import AutoPromptSearcher
from promptscout.searchers.base import SearchContext, Searcher, SearcherConfig
from promptscout.searchers.bayesian import BayesianSearcher
from promptscout.searchers.evolutionary import EvolutionarySearcher
from promptscout.searchers.manual import ManualSearcher
from promptscout.searchers.parametric import PeftSearcher
from promptscout.searchers.prompt_tuning import SoftSearcher
from promptscout.searchers.random_search import RandomSearcher
from promptscout.searchers.rl import RLSearcher
from promptscout.searchers.writers import ApeSearcher, OproSearcher, ReflectSearcher

__all__ = [
    "SEARCHERS",
    "SearchContext",
    "Searcher",
    "SearcherConfig",
    "create_searcher",
    "register_searcher",
    "searcher_class",
]

ENTRY_POINT_GROUP = "promptscout.searchers"

SEARCHERS: dict[str, type[Searcher]] = {}


def register_searcher(cls: type[Searcher]) -> type[Searcher]:
    """Register a searcher class under its ``type_name`` (usable as a class decorator)."""
    SEARCHERS[cls.type_name] = cls
    return cls


register_searcher(ManualSearcher)
register_searcher(RandomSearcher)
register_searcher(BayesianSearcher)
register_searcher(SoftSearcher)
register_searcher(PeftSearcher)
register_searcher(EvolutionarySearcher)
register_searcher(AutoPromptSearcher)
register_searcher(RLSearcher)
register_searcher(ApeSearcher)
register_searcher(OproSearcher)
register_searcher(ReflectSearcher)


def available_searchers() -> list[str]:
    """Registered and entry-point searcher type names."""
    return sorted(set(SEARCHERS) | {e.name for e in entry_points(group=ENTRY_POINT_GROUP)})


def searcher_class(type_name: str) -> type[Searcher]:
    """The class registered as ``type_name``, loading entry points on demand."""
    if type_name in SEARCHERS:
        return SEARCHERS[type_name]
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == type_name:
            return register_searcher(entry.load())
    raise PromptscoutError(
        f"unknown searcher type '{type_name}'; available: {', '.join(available_searchers())}"
    )


def build_config(cls: type[Searcher], options: Mapping[str, Any]) -> SearcherConfig:
    """The searcher's config dataclass from campaign-file options, read by
    :func:`~promptscout.options.read_options`: unknown, renamed and mistyped options and bad
    values raise :class:`~promptscout.options.OptionError` naming the option."""
    return read_options(cls.config_class, options, owner=f"searcher '{cls.type_name}'")


def create_searcher(type_name: str, options: Mapping[str, Any], context: SearchContext) -> Searcher:
    """Build a registered searcher from its type name and campaign-file options."""
    cls = searcher_class(type_name)
    return cls.create(build_config(cls, options), context)
