"""The campaign file's tables as dataclasses: each field, declared with
:func:`~promptscout.options.option`, is the only declaration of an option (its type, default and
help text); ``__post_init__`` checks values. :mod:`promptscout.config` reads a file into them.
``[racing]``'s table is :class:`~promptscout.evaluation.racing.RacingConfig`.
"""

from __future__ import annotations

from promptscout.evaluation.racing import RacingConfig
from promptscout.sections.model import SERVER_OPTIONS, ModelConfig, ProposerConfig
from promptscout.sections.results import (
    DEFAULT_ENSEMBLES,
    LeaderboardConfig,
    ReportConfig,
    SelectionConfig,
    TrackingConfig,
)
from promptscout.sections.run import BudgetConfig, CampaignOptions, EvaluatorConfig, ObjectiveConfig
from promptscout.sections.task import SPLITS, TaskConfig

TABLES: dict[str, type] = {
    "model": ModelConfig,
    "proposer": ProposerConfig,
    "task": TaskConfig,
    "objective": ObjectiveConfig,
    "budget": BudgetConfig,
    "evaluator": EvaluatorConfig,
    "leaderboard": LeaderboardConfig,
    "selection": SelectionConfig,
    "racing": RacingConfig,
    "tracking": TrackingConfig,
    "report": ReportConfig,
}
"""The tables a campaign file may have besides ``[campaign]`` and ``[[searchers]]``, each the
:class:`CampaignConfig` attribute of the same name."""

SECTIONS: dict[str, type] = {"campaign": CampaignOptions, **TABLES}
"""Every table's options (``[[searchers]]`` aside: those are each searcher's own)."""

__all__ = [
    "DEFAULT_ENSEMBLES",
    "SECTIONS",
    "SERVER_OPTIONS",
    "SPLITS",
    "TABLES",
    "BudgetConfig",
    "CampaignOptions",
    "EvaluatorConfig",
    "LeaderboardConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "ProposerConfig",
    "ReportConfig",
    "SelectionConfig",
    "TaskConfig",
    "TrackingConfig",
]
