"""Campaign files: TOML in, validated dataclasses out, and errors that point at the line.

Every problem is one :class:`PromptscoutError` line of the form
``campaign.toml:12: [budget] examples: must be a positive integer, got -5``.

Each table of the file is a dataclass below (``[racing]``'s is
:class:`~promptscout.evaluation.racing.RacingConfig`), and its fields, declared with
:func:`~promptscout.options.option`, are the only declaration of its options: their types,
defaults and help texts. :func:`~promptscout.options.read_options` reads a table into it,
``__post_init__`` checks values, and :func:`parse_config` adds the checks that span tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.evaluation.racing import RacingConfig
from promptscout.model import DTYPES, EMBEDDED_MODEL_NAME
from promptscout.options import OptionError, TomlFile, option, upgrade_options

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPLITS = ("train", "dev", "test")


@dataclass
class CampaignOptions:
    """The ``[campaign]`` table: the campaign's name, seed and files."""

    name: str = option(
        "", help="The campaign's id: letters, digits, '.', '_' or '-' (default: the file's name)."
    )
    seed: int = option(0, help="Seeds every searcher (mixed with the searcher's position).")
    store: str = option("", help="The SQLite store (default: runs/<name>.db).")
    export: str = option("", help="The export of the winners (default: the store path, .json).")

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise OptionError("name", f"use letters, digits, '.', '_' or '-', got {self.name!r}")


@dataclass
class ModelConfig:
    """The ``[model]`` table: the language model every prompt is scored with."""

    name: str = option(
        EMBEDDED_MODEL_NAME,
        help="The embedded default, a Hugging Face hub name, or a local folder.",
    )
    dtype: str = option("float32", help=f"Weight dtype: {' | '.join(DTYPES)}.")
    device: str = option("cpu", help="Where the model runs: cpu | cuda | auto.")
    batch_size: int = option(16, help="Texts per model call.")

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise OptionError(
                "dtype", f"must be {', '.join(DTYPES[:-1])} or {DTYPES[-1]}, got {self.dtype!r}"
            )
        if self.batch_size < 1:
            raise OptionError("batch_size", "must be at least 1")


@dataclass
class TaskConfig:
    """The ``[task]`` table: the labelled examples, and which split is searched on."""

    name: str = option(
        "", help="A bundled set (sst-2, mr, sst-5, agnews, yahoo, dbpedia); or give path."
    )
    path: str = option("", help="A folder of train, dev and (optionally) test files; or name.")
    split_seed: int = option(42, help="Which 16-shot split of a bundled set: 13, 21, 42, 87, 100.")
    label_words: list[str] = option(
        [], help="One word per class, in label order (default: the task's own)."
    )
    search_split: str = option("dev", help="What searchers are scored on: train | dev | test.")
    holdout_split: str = option(
        "test", help="What finalists are re-scored on; never shown to searchers."
    )
    holdout_limit: int = option(
        0,
        help="Re-score the finalists on this many held-out examples, a seeded random subset "
        "(0: all of them).",
    )

    def __post_init__(self) -> None:
        if bool(self.name) == bool(self.path):
            raise OptionError(
                None, "give exactly one of 'name' (a bundled set such as \"sst-2\") or 'path'"
            )
        for key in ("search_split", "holdout_split"):
            if getattr(self, key) not in SPLITS:
                raise OptionError(key, f"must be train, dev or test, got {getattr(self, key)!r}")
        if self.holdout_limit < 0:
            raise OptionError("holdout_limit", f"must be 0 or more, got {self.holdout_limit}")
        if self.search_split == self.holdout_split:
            raise OptionError(
                "holdout_split", "must differ from search_split: held-out data is never searched"
            )

    @property
    def spec(self) -> str:
        return self.path or self.name


@dataclass
class ObjectiveConfig:
    """The ``[objective]`` table: what candidates are ranked by."""

    names: str | list[str] = option(
        ["accuracy"],
        key="name",
        help="One objective or a list; the first ranks unless weights are given: accuracy, "
        "macro_f1, cross_entropy, exact_match, prompt_length, or module:function.",
    )
    weights: list[float] = option(
        [], help="Rank by sum(weight * value), minimised objectives negated; one per objective."
    )

    def __post_init__(self) -> None:
        if isinstance(self.names, str):
            self.names = [self.names]
        if not self.names:
            raise OptionError("name", "must be an objective name or a non-empty list of names")
        if self.weights and len(self.weights) != len(self.names):
            raise OptionError("weights", f"must be {len(self.names)} numbers, one per objective")


@dataclass
class BudgetConfig:
    """The ``[budget]`` table: when the search stops (whichever limit comes first)."""

    examples: int | None = option(20000, help="Examples scored on the search split.")
    minutes: float | None = option(None, help="Wall time, summed over runs (unset: no limit).")
    candidates: int | None = option(None, help="Distinct prompts scored (unset: no limit).")

    def __post_init__(self) -> None:
        for key in ("candidates", "examples"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise OptionError(key, f"must be a positive integer, got {value}")
        if self.minutes is not None and self.minutes <= 0:
            raise OptionError("minutes", f"must be positive, got {self.minutes}")


@dataclass
class EvaluatorConfig:
    """The ``[evaluator]`` table: in-process scoring, or Ray actors (see
    :class:`~promptscout.evaluation.ray_evaluator.RayEvaluator`)."""

    type: str = option("local", help='"local" (in-process scoring) or "ray" (Ray actors).')
    workers: int = option(
        2, help="Ray: actors, each holding the model; searchers are asked for as many prompts."
    )
    address: str = option(
        "",
        help='Ray: "" starts a private instance here; "auto", "HOST:PORT" or "ray://HOST:PORT" '
        "join a running cluster.",
    )
    cpus_per_worker: float = option(1.0, help="Ray: CPUs reserved per actor (its torch threads).")
    gpus_per_worker: float = option(
        0.0, help='Ray: GPUs per actor (fractions share one); needs [model] device = "cuda".'
    )
    chunk_size: int = option(
        32, help="Ray: a prompt's examples are cut into work units of this many texts."
    )

    def __post_init__(self) -> None:
        if self.type not in ("local", "ray"):
            raise OptionError("type", f"unknown evaluator {self.type!r}; available: local, ray")
        if self.workers < 1:
            raise OptionError("workers", f"must be at least 1, got {self.workers}")
        if self.cpus_per_worker <= 0:
            raise OptionError("cpus_per_worker", f"must be positive, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0:
            raise OptionError("gpus_per_worker", f"must be 0 or more, got {self.gpus_per_worker}")
        if self.chunk_size < 1:
            raise OptionError("chunk_size", f"must be at least 1, got {self.chunk_size}")
        address = self.address
        ray_address = address == "auto" or address.startswith("ray://")
        if address and not (ray_address or re.fullmatch(r"[\w.-]+:\d+", address)):
            raise OptionError(
                "address",
                f'use "auto", "ray://HOST:PORT" or "HOST:PORT" of a running Ray cluster '
                f"(empty: start one here), got {address!r}",
            )


@dataclass
class LeaderboardConfig:
    """The ``[leaderboard]`` table: finalists re-scored on the holdout split, and ensembles of
    them (see :mod:`promptscout.ensemble`)."""

    top_k: int = option(3, help="Finalists re-scored on the holdout split.")
    ensembles: list[str] = option(
        [], help="Rows pooling the finalists' outputs: average | vote | weighted."
    )
    ensemble_size: int = option(0, help="Members: the best this many finalists (0: all top_k).")
    calibrate: bool = option(
        False, help="Contextual calibration: a calibrated row per finalist and ensemble."
    )

    def __post_init__(self) -> None:
        from promptscout.ensemble.types import METHODS

        if self.top_k < 0:
            raise OptionError("top_k", "must be 0 or more")
        unknown = [m for m in self.ensembles if m not in METHODS]
        if unknown:
            raise OptionError(
                "ensembles", f"unknown method {unknown[0]!r}; use {', '.join(METHODS)}"
            )
        if self.ensembles and self.top_k < 2:
            raise OptionError("ensembles", "ensembles pool finalists: set top_k to 2 or more")
        if self.ensemble_size == 1 or self.ensemble_size < 0:
            raise OptionError("ensemble_size", "must be 2 or more (or 0 for all top_k finalists)")
        if self.ensemble_size > self.top_k:
            raise OptionError(
                "ensemble_size",
                f"members must be finalists: {self.ensemble_size} > top_k = {self.top_k}",
            )


@dataclass
class SelectionConfig:
    """The ``[selection]`` table: how the campaign picks among its best candidates (see
    :mod:`promptscout.campaign.selection`)."""

    pool: int = option(
        8,
        help="Candidates, the best by the search split, compared again on more evidence for the "
        "pick (0: the search split alone decides).",
    )
    validation: bool = option(
        True,
        help="Also score them on the training examples they never learned from (all but their "
        "own demonstrations; not for searchers trained on the training labels).",
    )
    z: float = option(
        1.0,
        help="An ensemble is picked over the best prompt when its paired advantage on held-out "
        "validation examples is above 0 with this many standard errors.",
    )

    def __post_init__(self) -> None:
        if self.pool < 0:
            raise OptionError("pool", f"must be 0 or more, got {self.pool}")
        if self.z < 0:
            raise OptionError("z", f"must be 0 or more, got {self.z}")


TABLES: dict[str, type] = {
    "model": ModelConfig,
    "task": TaskConfig,
    "objective": ObjectiveConfig,
    "budget": BudgetConfig,
    "evaluator": EvaluatorConfig,
    "leaderboard": LeaderboardConfig,
    "selection": SelectionConfig,
    "racing": RacingConfig,
}
"""The tables a campaign file may have besides ``[campaign]`` and ``[[searchers]]``, each the
:class:`CampaignConfig` attribute of the same name."""

SECTIONS: dict[str, type] = {"campaign": CampaignOptions, **TABLES}
"""Every table's options (``[[searchers]]`` aside: those are each searcher's own)."""


@dataclass
class SearcherSpec:
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class CampaignConfig(CampaignOptions):
    """A validated campaign file: ``[campaign]``'s options, then one attribute per table."""

    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=lambda: TaskConfig(name="sst-2"))
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    leaderboard: LeaderboardConfig = field(default_factory=LeaderboardConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
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
    if config.evaluator.gpus_per_worker > 0 and config.model.device == "cpu":
        parser.fail(
            "evaluator",
            "gpus_per_worker",
            'workers get GPUs only with [model] device = "cuda" (or "auto")',
        )
    if data.get("searchers") is None:
        # The default mix: searchers chosen for the task when the campaign starts, ensembles on,
        # and ten minutes of search unless the file sets a budget of its own.
        config.default_mix = True
        if "budget" not in data:
            config.budget = BudgetConfig(examples=None, minutes=10.0)
        if "leaderboard" not in data:
            config.leaderboard = LeaderboardConfig(top_k=4, ensembles=["average", "weighted"])
        if "holdout_limit" not in (data.get("task") or {}):
            config.task.holdout_limit = 2000  # finalists' test scoring stays minutes, not hours
        return config
    config.searchers = _searcher_specs(parser, data.get("searchers"))
    return config


def _searcher_specs(parser: TomlFile, entries: Any) -> list[SearcherSpec]:
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
            build_config(searcher_class(type_name), options)
        except OptionError as exc:
            parser.fail("searchers", exc.key, exc.problem, i)
        except PromptscoutError as exc:  # an unknown type, or a plug-in that does not load
            parser.fail("searchers", "type", str(exc), i)
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
