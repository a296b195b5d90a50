"""promptscout: automated prompt search.

The public API. Importing it stays light: the model stack (torch, transformers) loads only when
``load_model``, ``LanguageModel`` or ``LocalEvaluator`` is first used.
"""

from __future__ import annotations

from typing import Any

from promptscout.campaign import Campaign, CampaignResult
from promptscout.config import CampaignConfig, load_config
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator
from promptscout.leaderboard import LeaderboardEntry, build_leaderboard
from promptscout.objectives import Objective, ObjectiveInput, Ranking, register_objective
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, Searcher, SearcherConfig, register_searcher
from promptscout.store import Store
from promptscout.tasks import Example, Task, load_task

__version__ = "0.1.0"

_LAZY = {
    "LanguageModel": "promptscout.model",
    "load_model": "promptscout.model",
    "LocalEvaluator": "promptscout.evaluation.local",
}

__all__ = [
    "Campaign",
    "CampaignConfig",
    "CampaignResult",
    "Evaluation",
    "Evaluator",
    "Example",
    "LeaderboardEntry",
    "Objective",
    "ObjectiveInput",
    "Prompt",
    "PromptscoutError",
    "Ranking",
    "SearchContext",
    "Searcher",
    "SearcherConfig",
    "Store",
    "Task",
    "build_leaderboard",
    "load_config",
    "load_task",
    "register_objective",
    "register_searcher",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'promptscout' has no attribute {name!r}")
