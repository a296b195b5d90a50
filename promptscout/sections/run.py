"""The tables of how a campaign runs: ``[campaign]`` (its name, seed and files),
``[objective]``, ``[budget]`` and ``[evaluator]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptscout.options import OptionError, option, require_non_negative


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
    dollars: float | None = option(
        None, help="Spending on a priced served model ([model] price_per_1k_*; unset: no limit)."
    )

    def __post_init__(self) -> None:
        for key in ("candidates", "examples"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise OptionError(key, f"must be a positive integer, got {value}")
        if self.dollars is not None and self.dollars <= 0:
            raise OptionError("dollars", f"must be positive, got {self.dollars}")
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
        require_non_negative(self, ["gpus_per_worker"])
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
