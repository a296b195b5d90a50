"""Campaign files: TOML in, validated dataclasses out, and errors that point at the line.

Every problem is one :class:`PromptscoutError` line of the form
``campaign.toml:12: [budget] examples: must be a positive integer, got -5``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.evaluation.racing import RacingConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EMBEDDED_MODEL = "smollm2-135m-instruct"


@dataclass
class ModelConfig:
    name: str = EMBEDDED_MODEL
    dtype: str = "float32"
    device: str = "cpu"
    batch_size: int = 16


@dataclass
class TaskConfig:
    name: str = ""
    path: str = ""
    split_seed: int = 42
    label_words: list[str] = field(default_factory=list)
    search_split: str = "dev"
    holdout_split: str = "test"

    @property
    def spec(self) -> str:
        return self.path or self.name


@dataclass
class ObjectiveConfig:
    names: list[str] = field(default_factory=lambda: ["accuracy"])
    weights: list[float] = field(default_factory=list)


@dataclass
class BudgetConfig:
    examples: int | None = 20000
    minutes: float | None = None
    candidates: int | None = None


@dataclass
class EvaluatorConfig:
    """The ``[evaluator]`` table: in-process scoring, or Ray actors (see
    :class:`~promptscout.evaluation.ray_evaluator.RayEvaluator`)."""

    type: str = "local"
    workers: int = 2
    address: str = ""
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    chunk_size: int = 32


@dataclass
class LeaderboardConfig:
    """The ``[leaderboard]`` table: finalists re-scored on the holdout split, and ensembles of
    them (see :mod:`promptscout.ensemble`)."""

    top_k: int = 3
    ensembles: list[str] = field(default_factory=list)  # "average", "vote", "weighted"
    ensemble_size: int = 0  # members: the best this many finalists (0: all of them)
    calibrate: bool = False  # contextually calibrated rows too


@dataclass
class SearcherSpec:
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class CampaignConfig:
    """A validated campaign file."""

    name: str
    seed: int = 0
    store: str = ""
    export: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    leaderboard: LeaderboardConfig = field(default_factory=LeaderboardConfig)
    racing: RacingConfig = field(default_factory=RacingConfig)
    searchers: list[SearcherSpec] = field(default_factory=list)
    source: str = "<config>"

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
        sections = {
            "model": ModelConfig,
            "task": TaskConfig,
            "objective": ObjectiveConfig,
            "budget": BudgetConfig,
            "evaluator": EvaluatorConfig,
            "leaderboard": LeaderboardConfig,
            "racing": RacingConfig,
        }
        kwargs = {k: v for k, v in data.items() if k not in sections and k != "searchers"}
        kwargs.update({k: c(**data[k]) for k, c in sections.items() if k in data})
        kwargs["searchers"] = [SearcherSpec(**s) for s in data["searchers"]]
        return cls(**kwargs)


class _Locator:
    """Finds the line of a table header or key in the TOML text, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, table: str, key: str | None = None, index: int = 0) -> int | None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        starts = [i for i, line in enumerate(self.lines) if header.match(line)]
        if index >= len(starts):
            return None
        start = starts[index]
        if key is None:
            return start + 1
        key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if key_re.match(self.lines[i]):
                return i + 1
        return start + 1


class _Section:
    """Typed access to one TOML table; unknown keys are reported by :meth:`finish`."""

    def __init__(self, parser: _Parser, name: str, data: Any, index: int = 0) -> None:
        self.parser, self.name, self.index = parser, name, index
        if not isinstance(data, dict):
            parser.fail(name, None, f"must be a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML integers are valid floats; bools are ints in Python but never valid numbers here.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(key, f"must be {names}, got {value!r}")
        return value

    def string_list(self, key: str, default: list[str]) -> list[str]:
        value = self.get(key, list, default)
        if not all(isinstance(v, str) for v in value):
            self.fail(key, f"must be a list of strings, got {value!r}")
        return list(value)

    def fail(self, key: str | None, problem: str) -> None:
        self.parser.fail(self.name, key, problem, self.index)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(unknown[0], f"unknown key; known keys: {', '.join(sorted(self.used))}")


class _Parser:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.locator = _Locator(text)

    def fail(self, table: str, key: str | None, problem: str, index: int = 0) -> None:
        line = self.locator.line(table, key, index)
        where = f"{self.source}:{line}" if line else self.source
        what = f"[{table}] {key}" if key else f"[{table}]"
        raise PromptscoutError(f"{where}: {what}: {problem}")


_TOP_LEVEL = {
    "campaign",
    "model",
    "task",
    "objective",
    "budget",
    "evaluator",
    "leaderboard",
    "racing",
    "searchers",
}


def parse_config(data: dict[str, Any], source: str = "<config>", text: str = "") -> CampaignConfig:
    """Validate parsed TOML ``data`` into a :class:`CampaignConfig`."""
    parser = _Parser(source, text)
    for key in data:
        if key not in _TOP_LEVEL:
            parser.fail(key, None, f"unknown table; known: {', '.join(sorted(_TOP_LEVEL))}")

    campaign = _Section(parser, "campaign", data.get("campaign", {}))
    default_name = Path(source).stem if source != "<config>" else "campaign"
    config = CampaignConfig(
        name=campaign.get("name", str, default_name),
        seed=campaign.get("seed", int, 0),
        store=campaign.get("store", str, ""),
        export=campaign.get("export", str, ""),
        source=source,
    )
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", config.name):
        campaign.fail("name", f"use letters, digits, '.', '_' or '-', got {config.name!r}")
    campaign.finish()

    model = _Section(parser, "model", data.get("model", {}))
    config.model = ModelConfig(
        name=model.get("name", str, EMBEDDED_MODEL),
        dtype=model.get("dtype", str, "float32"),
        device=model.get("device", str, "cpu"),
        batch_size=model.get("batch_size", int, 16),
    )
    if config.model.dtype not in ("float32", "bfloat16", "float16"):
        model.fail("dtype", f"must be float32, bfloat16 or float16, got {config.model.dtype!r}")
    if config.model.batch_size < 1:
        model.fail("batch_size", "must be at least 1")
    model.finish()

    config.task = _task_section(_Section(parser, "task", data.get("task", {})))
    config.objective = _objective_section(_Section(parser, "objective", data.get("objective", {})))

    budget = _Section(parser, "budget", data.get("budget", {}))
    config.budget = BudgetConfig(
        examples=budget.get("examples", int, 20000),
        minutes=budget.get("minutes", float, None),
        candidates=budget.get("candidates", int, None),
    )
    if config.budget.candidates is not None and config.budget.candidates < 1:
        budget.fail("candidates", f"must be a positive integer, got {config.budget.candidates}")
    if config.budget.examples is not None and config.budget.examples < 1:
        budget.fail("examples", f"must be a positive integer, got {config.budget.examples}")
    if config.budget.minutes is not None and config.budget.minutes <= 0:
        budget.fail("minutes", f"must be positive, got {config.budget.minutes}")
    budget.finish()

    evaluator = _Section(parser, "evaluator", data.get("evaluator", {}))
    config.evaluator = _evaluator_section(evaluator, config.model)

    leaderboard = _Section(parser, "leaderboard", data.get("leaderboard", {}))
    config.leaderboard = _leaderboard_section(leaderboard)

    racing = _Section(parser, "racing", data.get("racing", {}))
    try:
        config.racing = RacingConfig(
            enabled=racing.get("enabled", bool, True),
            first=racing.get("first", int, 8),
            factor=racing.get("factor", float, 2.0),
            z=racing.get("z", float, 1.0),
        )
    except PromptscoutError as exc:
        racing.fail(None, str(exc))
    racing.finish()

    config.searchers = _searcher_specs(parser, data.get("searchers"))
    return config


def _leaderboard_section(section: _Section) -> LeaderboardConfig:
    from promptscout.ensemble.types import METHODS

    config = LeaderboardConfig(
        top_k=section.get("top_k", int, 3),
        ensembles=section.string_list("ensembles", []),
        ensemble_size=section.get("ensemble_size", int, 0),
        calibrate=section.get("calibrate", bool, False),
    )
    if config.top_k < 0:
        section.fail("top_k", "must be 0 or more")
    unknown = [m for m in config.ensembles if m not in METHODS]
    if unknown:
        section.fail("ensembles", f"unknown method {unknown[0]!r}; use {', '.join(METHODS)}")
    if config.ensembles and config.top_k < 2:
        section.fail("ensembles", "ensembles pool finalists: set top_k to 2 or more")
    if config.ensemble_size == 1 or config.ensemble_size < 0:
        section.fail("ensemble_size", "must be 2 or more (or 0 for all top_k finalists)")
    if config.ensemble_size > config.top_k:
        section.fail(
            "ensemble_size",
            f"members must be finalists: {config.ensemble_size} > top_k = {config.top_k}",
        )
    section.finish()
    return config


def _task_section(task: _Section) -> TaskConfig:
    config = TaskConfig(
        name=task.get("name", str, ""),
        path=task.get("path", str, ""),
        split_seed=task.get("split_seed", int, 42),
        label_words=task.string_list("label_words", []),
        search_split=task.get("search_split", str, "dev"),
        holdout_split=task.get("holdout_split", str, "test"),
    )
    if bool(config.name) == bool(config.path):
        task.fail(None, "give exactly one of 'name' (a bundled set such as \"sst-2\") or 'path'")
    for key in ("search_split", "holdout_split"):
        if getattr(config, key) not in ("train", "dev", "test"):
            task.fail(key, f"must be train, dev or test, got {getattr(config, key)!r}")
    if config.search_split == config.holdout_split:
        task.fail("holdout_split", "must differ from search_split: held-out data is never searched")
    task.finish()
    return config


def _evaluator_section(evaluator: _Section, model: ModelConfig) -> EvaluatorConfig:
    config = EvaluatorConfig(
        type=evaluator.get("type", str, "local"),
        workers=evaluator.get("workers", int, 2),
        address=evaluator.get("address", str, ""),
        cpus_per_worker=evaluator.get("cpus_per_worker", float, 1.0),
        gpus_per_worker=evaluator.get("gpus_per_worker", float, 0.0),
        chunk_size=evaluator.get("chunk_size", int, 32),
    )
    if config.type not in ("local", "ray"):
        evaluator.fail("type", f"unknown evaluator {config.type!r}; available: local, ray")
    if config.workers < 1:
        evaluator.fail("workers", f"must be at least 1, got {config.workers}")
    if config.cpus_per_worker <= 0:
        evaluator.fail("cpus_per_worker", f"must be positive, got {config.cpus_per_worker}")
    if config.gpus_per_worker < 0:
        evaluator.fail("gpus_per_worker", f"must be 0 or more, got {config.gpus_per_worker}")
    if config.gpus_per_worker > 0 and model.device == "cpu":
        evaluator.fail(
            "gpus_per_worker", 'workers get GPUs only with [model] device = "cuda" (or "auto")'
        )
    if config.chunk_size < 1:
        evaluator.fail("chunk_size", f"must be at least 1, got {config.chunk_size}")
    address = config.address
    if address and not (
        address == "auto" or address.startswith("ray://") or re.fullmatch(r"[\w.-]+:\d+", address)
    ):
        evaluator.fail(
            "address",
            f'use "auto", "ray://HOST:PORT" or "HOST:PORT" of a running Ray cluster '
            f"(empty: start one here), got {address!r}",
        )
    evaluator.finish()
    return config


def _objective_section(objective: _Section) -> ObjectiveConfig:
    names = objective.get("name", (str, list), "accuracy")
    names = [names] if isinstance(names, str) else names
    if not names or not all(isinstance(n, str) for n in names):
        objective.fail("name", "must be an objective name or a non-empty list of names")
    weights = objective.get("weights", list, [])
    if weights and (
        len(weights) != len(names) or not all(isinstance(w, (int, float)) for w in weights)
    ):
        objective.fail("weights", f"must be {len(names)} numbers, one per objective")
    objective.finish()
    return ObjectiveConfig(names=list(names), weights=[float(w) for w in weights])


def _searcher_specs(parser: _Parser, entries: Any) -> list[SearcherSpec]:
    if entries is None:
        parser.fail("searchers", None, "add at least one [[searchers]] table with a 'type'")
    if not isinstance(entries, list):
        parser.fail("searchers", None, "must be an array of tables: write [[searchers]]")
    # Imported here: config parsing must not import the model stack unless searchers need it.
    from promptscout.searchers import build_config, searcher_class

    specs = []
    for i, entry in enumerate(entries):
        section = _Section(parser, "searchers", entry, index=i)
        if "type" not in entry:
            section.fail(None, "missing 'type' (e.g. type = \"manual\")")
        type_name = section.get("type", str, "")
        try:
            cls = searcher_class(type_name)
            options = {k: v for k, v in entry.items() if k != "type"}
            fields = {f.name for f in dataclasses.fields(cls.config_class)}
            for key in options:
                if key not in fields:
                    section.fail(
                        key,
                        f"unknown option of searcher '{type_name}'; options: "
                        f"{', '.join(sorted(fields))}",
                    )
            build_config(cls, options)
        except PromptscoutError as exc:
            if str(exc).startswith(parser.source):
                raise
            section.fail("type" if "type" in str(exc) else None, str(exc))
        specs.append(SearcherSpec(type_name, options, parser.locator.line("searchers", None, i)))
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
