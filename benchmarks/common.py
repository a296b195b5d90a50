"""What the search-quality benchmarks share: a campaign file set up for one benchmark run,
stored objective values, scoring extra prompts on a split, and the numbers' format.

The benchmarks run as scripts (``.venv/bin/python benchmarks/NAME.py``), so this folder is on
the import path and they import this module as ``common``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from promptscout.config import CampaignConfig, load_config
from promptscout.evaluation.base import Evaluator
from promptscout.prompts import Prompt
from promptscout.store import Store

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def bench_config(
    example: Path, args: argparse.Namespace, folder: Path, stem: str
) -> CampaignConfig:
    """The example campaign with the run's seed and budget, its store in ``folder`` unless
    ``--store`` names one (refused if it exists: a benchmark starts from nothing)."""
    config = load_config(example)
    config.seed = args.seed
    config.budget.minutes = args.minutes
    if getattr(args, "examples", None) is not None:
        config.budget.examples = args.examples
    config.store = args.store or str(folder / f"{stem}.db")
    config.export = str(Path(config.store).with_suffix(".json"))
    if Path(config.store).exists():
        raise SystemExit(f"error: {config.store} exists; give a new --store path")
    return config


def values(store: Store, prompt: Prompt, split: str, ids: list[str]) -> dict[str, float] | None:
    """Objective values of a prompt scored without error on all of ``ids``, or None."""
    found = store.find_evaluation(prompt.key, split, ids)
    return found.objectives if found is not None and found.ok else None


def prompt_row(
    store: Store, name: str, prompt: Prompt, dev: list[str], test: list[str], **extra: object
) -> dict[str, object]:
    """A results-table row: the prompt, and its objective values on dev and test (or None)."""
    return {
        "name": name,
        **extra,
        "key": prompt.key,
        "prompt": prompt.to_dict(),
        "dev": values(store, prompt, "dev", dev),
        "test": values(store, prompt, "test", test),
    }


def score_missing(
    evaluator: Evaluator,
    store: Store,
    prompts: Sequence[Prompt],
    split: str,
    ids: list[str],
    searcher: str | None = None,
) -> None:
    """Score on ``ids`` the prompts the store has no evaluation of there, and store them under
    ``searcher`` (default: the searcher that proposed each during the campaign)."""
    proposed_by = {key: name for key, (_, name) in store.prompts().items()}
    todo = {p.key: p for p in prompts if values(store, p, split, ids) is None}
    for evaluation in evaluator.iter_evaluate(list(todo.values()), split, ids):
        name = searcher or proposed_by[evaluation.prompt_key]
        store.add_evaluation(todo[evaluation.prompt_key], name, evaluation)


def fmt(values: dict[str, float] | None, name: str) -> str:
    return f"{values[name]:.4f}" if values else "-"
