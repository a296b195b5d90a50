"""Scoring one prompt (or an exported row) on a task split: what ``promptscout evaluate`` does,
as a library function.

Example:
    >>> from promptscout.evaluate import evaluate_prompt
    >>> from promptscout.model import load_model
    >>> from promptscout.prompts import Prompt
    >>> from promptscout.tasks import load_task
    >>> task = load_task("sst-2")
    >>> prompt = Prompt("Review: {text}\\nSentiment:", ("negative", "positive"))
    >>> model = load_model("smollm2-135m-instruct")  # doctest: +SKIP
    >>> result = evaluate_prompt(prompt, task, model)  # doctest: +SKIP
    >>> round(result["accuracy"], 4)  # doctest: +SKIP
    0.8089
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptscout.ensemble import Ensemble
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import ProgressCallback
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.soft_tensors import SoftResolver
from promptscout.tasks import Task

if TYPE_CHECKING:
    from promptscout.model import LanguageModel


def read_export(path: str | Path, rank: int = 1) -> tuple[Prompt | Ensemble, dict[str, Any]]:
    """Row ``rank`` of an export file (a prompt, a soft prompt or an ensemble) and the whole
    export document (its task, model and ranking)."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PromptscoutError(f"cannot read exported prompt file {path}: {exc}") from None
    entries = payload.get("entries") if isinstance(payload, dict) else None
    if not entries:
        raise PromptscoutError(f"{path} is not a promptscout export (no 'entries')")
    if not 1 <= rank <= len(entries):
        raise PromptscoutError(
            f"{path} has {len(entries)} entries; --rank must be 1..{len(entries)}"
        )
    entry = entries[rank - 1]
    if entry.get("kind") == "ensemble":  # members, method and weights; scored by pooling
        return Ensemble.from_dict(entry["prompt"]), payload
    return Prompt.from_dict(entry["prompt"]), payload


def default_objectives(task: Task) -> list[str]:
    """What ``evaluate`` reports unless told otherwise."""
    if task.kind == "classification":
        return ["accuracy", "macro_f1", "cross_entropy"]
    return ["exact_match"]


def evaluate_prompt(
    prompt: Prompt | Ensemble,
    task: Task,
    model: LanguageModel,
    *,
    split: str = "test",
    objectives: Sequence[str] | None = None,
    soft_resolver: SoftResolver | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Score ``prompt`` on every example of ``split``.

    Args:
        prompt: A prompt, or an ensemble (its members are scored, then pooled).
        task: The task.
        model: The language model.
        split: Which split to score.
        objectives: Objective names (default: :func:`default_objectives`).
        soft_resolver: Where a soft prompt's tensors come from (e.g. an export's file).
        progress: Called with the number of examples just scored.

    Returns:
        Every objective's value, ``examples``, ``seconds`` (scoring only, not model loading),
        ``examples_per_second``, ``split``, ``task``, ``model``, ``fingerprint`` and ``prompt``;
        ``served`` for a served model (its :meth:`~promptscout.model.served.ServedModel.counters`).

    Raises:
        PromptscoutError: the prompt does not fit the task, or could not be scored.
    """
    from promptscout.ensemble.finalize import score_ensemble
    from promptscout.evaluation.local import LocalEvaluator

    prompt.check_task(task)
    resolved = [resolve_objective(name) for name in objectives or default_objectives(task)]
    for objective in resolved:
        if task.kind not in objective.task_kinds:
            raise PromptscoutError(
                f"objective '{objective.name}' does not apply to {task.kind} task '{task.name}'"
            )
    evaluator = LocalEvaluator(model, task, resolved, soft_resolver=soft_resolver)
    started = time.perf_counter()
    if isinstance(prompt, Ensemble):
        evaluation = score_ensemble(evaluator, task, resolved, prompt, split, progress=progress)
    else:
        (evaluation,) = evaluator.evaluate([prompt], split, progress=progress)
    seconds = time.perf_counter() - started
    if evaluation.error:
        raise PromptscoutError(f"the prompt could not be scored: {evaluation.error}")
    return {
        **evaluation.objectives,
        "examples": evaluation.examples,
        "seconds": round(seconds, 3),
        "examples_per_second": round(evaluation.examples / seconds, 2) if seconds else None,
        "split": split,
        "task": task.name,
        "model": model.name,
        "fingerprint": model.fingerprint,
        "prompt": prompt.to_dict(),
        # a served model's requests, tokens and how label words were matched
        **({"served": model.counters()} if model.kind == "served" else {}),
    }
