"""Campaign files: TOML in, validated dataclasses out, and errors that point at the line.

Every problem is one :class:`PromptscoutError` line of the form
``campaign.toml:12: [budget] examples: must be a positive integer, got -5``.

Each table of the file is a dataclass of :mod:`promptscout.sections` (``[racing]``'s is
:class:`~promptscout.evaluation.racing.RacingConfig`), and its fields, declared with
:func:`~promptscout.options.option`, are the only declaration of its options: their types,
defaults and help texts. :func:`~promptscout.options.read_options` reads a table into it,
``__post_init__`` checks values, and :func:`parse_config` adds the checks that span tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.evaluation.racing import RacingConfig
from promptscout.options import OptionError, TomlFile, upgrade_options
from promptscout.sections import (
    SECTIONS,
    TABLES,
    BudgetConfig,
    CampaignOptions,
    EvaluatorConfig,
    LeaderboardConfig,
    ModelConfig,
    ObjectiveConfig,
    ProposerConfig,
    ReportConfig,
    SelectionConfig,
    TaskConfig,
    TrackingConfig,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The default campaign's re-scoring allowance: the finalists' held-out sample is what their
# measured speed buys in this time (DBpedia's rows, read with two demonstrations, score at 1-3
# examples a second: 4 finalists on 1,000 examples each took about an hour).
DEFAULT_RESCORE_MINUTES = 3.0


@dataclass
class SearcherSpec:
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class CampaignConfig(CampaignOptions):
    """A validated campaign file: ``[campaign]``'s options, then one attribute per table."""

    model: ModelConfig = field(default_factory=ModelConfig)
    proposer: ProposerConfig = field(default_factory=ProposerConfig)
    task: TaskConfig = field(default_factory=lambda: TaskConfig(name="sst-2"))
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    leaderboard: LeaderboardConfig = field(default_factory=LeaderboardConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    racing: RacingConfig = field(default_factory=RacingConfig)
    searchers: list[SearcherSpec] = field(default_factory=list)
    source: str = "<config>"
    # No [[searchers]] in the file: the campaign runs the default mix (campaign/default.py).
    default_mix: bool = False

    @property
    def store_path(self) -> Path:
        return Path(self.store or f"runs/{self.name}.db")

    @property
    def export_path(self) -> Path:
        return Path(self.export) if self.export else self.store_path.with_suffix(".json")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, kept in the store so ``resume`` needs nothing else."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignConfig:
        """The config :meth:`to_dict` stored (searcher options renamed since are upgraded)."""
        kwargs = {k: v for k, v in data.items() if k not in TABLES and k != "searchers"}
        kwargs.update({k: c(**data[k]) for k, c in TABLES.items() if k in data})
        kwargs["searchers"] = [_stored_spec(s) for s in data["searchers"]]
        return cls(**kwargs)


def _stored_spec(spec: dict[str, Any]) -> SearcherSpec:
    from promptscout.searchers import searcher_class

    options = spec.get("options") or {}
    # A plug-in no longer installed keeps its options: creating the searcher will say so.
    with contextlib.suppress(PromptscoutError):
        options = upgrade_options(searcher_class(spec["type"]).config_class, options)
    return SearcherSpec(spec["type"], options, spec.get("line"))


def parse_config(data: dict[str, Any], source: str = "<config>", text: str = "") -> CampaignConfig:
    """Validate parsed TOML ``data`` into a :class:`CampaignConfig`."""
    parser = TomlFile(source, text)
    known = sorted([*SECTIONS, "searchers"])
    for key in data:
        if key not in known:
            parser.fail(key, None, f"unknown table; known: {', '.join(known)}")
    campaign = data.get("campaign", {})
    if isinstance(campaign, dict) and "name" not in campaign:
        campaign = {"name": Path(source).stem if source != "<config>" else "campaign", **campaign}
    head = parser.read("campaign", CampaignOptions, campaign)
    tables = {name: parser.read(name, cls, data.get(name, {})) for name, cls in TABLES.items()}
    config = CampaignConfig(**vars(head), **tables, source=source)
    if config.model.served and config.evaluator.type == "ray":
        parser.fail(
            "evaluator",
            "type",
            "a served model is scored by its server: use the local evaluator (its requests "
            "run concurrently, [model] concurrency)",
        )
    if config.evaluator.gpus_per_worker > 0 and config.model.device == "cpu":
        parser.fail(
            "evaluator",
            "gpus_per_worker",
            'workers get GPUs only with [model] device = "cuda" (or "auto")',
        )
    if data.get("searchers") is None:
        # The default mix: searchers chosen for the task when the campaign starts, and ten
        # minutes of search unless the file sets a budget of its own.
        config.default_mix = True
        if "budget" not in data:
            config.budget = BudgetConfig(examples=None, minutes=10.0)
        if "holdout_limit" not in (data.get("task") or {}):
            config.task.holdout_limit = 2000  # finalists' test scoring stays minutes, not hours
        if "rescore_minutes" not in (data.get("leaderboard") or {}):
            config.leaderboard.rescore_minutes = DEFAULT_RESCORE_MINUTES
        return config
    config.searchers = _searcher_specs(parser, data.get("searchers"), config.evaluator.type)
    return config


def _searcher_specs(parser: TomlFile, entries: Any, evaluator: str) -> list[SearcherSpec]:
    if not isinstance(entries, list):
        parser.fail("searchers", None, "must be an array of tables: write [[searchers]]")
    # Imported here: config parsing must not import the model stack unless searchers need it.
    from promptscout.searchers import build_config, searcher_class

    specs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            parser.fail("searchers", None, f"must be a table, got {type(entry).__name__}", i)
        if "type" not in entry:
            parser.fail("searchers", None, "missing 'type' (e.g. type = \"manual\")", i)
        type_name = entry["type"]
        if not isinstance(type_name, str):
            parser.fail("searchers", "type", f"must be str, got {type_name!r}", i)
        options = {k: v for k, v in entry.items() if k != "type"}
        try:
            built = build_config(searcher_class(type_name), options)
        except OptionError as exc:
            parser.fail("searchers", exc.key, exc.problem, i)
        except PromptscoutError as exc:  # an unknown type, or a plug-in that does not load
            parser.fail("searchers", "type", str(exc), i)
        local_only = built.needs_local_evaluator() if evaluator == "ray" else None
        if local_only is not None:
            key, why = local_only
            parser.fail(
                "searchers",
                key,
                f'{why}: use [evaluator] type = "local", or leave {key} out',
                i,
            )
        specs.append(SearcherSpec(type_name, options, parser.line("searchers", None, i)))
    names = [s.options.get("name") or s.type for s in specs]
    for i, name in enumerate(names):
        if names.index(name) != i:
            parser.fail(
                "searchers",
                "name",
                f"two searchers are named '{name}'; give each a distinct 'name'",
                i,
            )
    return specs


def load_config(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptscoutError(f"campaign file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise PromptscoutError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise PromptscoutError(f"cannot read campaign file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PromptscoutError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, source=str(path), text=text)
