"""What a campaign file builds: its task, objectives, model, evaluator, and the export file.

Kept apart from the loop in :mod:`promptscout.campaign` so benchmarks and tools can build the
same parts (a shared evaluator, the task with its label words) without running a campaign.
"""

from __future__ import annotations

import json
from pathlib import Path

from promptscout.config import CampaignConfig
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluator
from promptscout.evaluation.cache import ScoreCache
from promptscout.leaderboard import build_leaderboard, export_payload
from promptscout.model import LanguageModel
from promptscout.objectives import Objective, resolve_objective
from promptscout.soft_tensors import write_export_tensors
from promptscout.store import Store
from promptscout.tasks import Task, load_task


def campaign_task(config: CampaignConfig) -> Task:
    """The task a campaign config names, with its label words."""
    words = config.task.label_words or None
    return load_task(config.task.spec, seed=config.task.split_seed, label_words=words)


def campaign_objectives(config: CampaignConfig, task: Task) -> list[Objective]:
    objectives = [resolve_objective(name) for name in config.objective.names]
    for objective in objectives:
        if task.kind not in objective.task_kinds:
            raise PromptscoutError(
                f"{config.source}: [objective] name: '{objective.name}' does not apply to "
                f"{task.kind} task '{task.name}'"
            )
    return objectives


def default_evaluator(
    task: Task, objectives: list[Objective], config: CampaignConfig, cache: ScoreCache | None
) -> Evaluator:
    """Load the configured model and score in this process (a campaign's own default shares
    its model with white-box searchers instead; this stand-alone form is for wrappers)."""
    from promptscout.evaluation.local import LocalEvaluator

    if config.evaluator.type == "ray":
        return ray_evaluator(task, objectives, config, cache)
    resolver = getattr(cache.store, "get_soft", None) if cache is not None else None
    return LocalEvaluator(
        load_campaign_model(config), task, objectives, cache=cache, soft_resolver=resolver
    )


def ray_evaluator(
    task: Task, objectives: list[Objective], config: CampaignConfig, cache: ScoreCache | None
) -> Evaluator:
    """Score on Ray actors as the ``[evaluator]`` table says (Ray is imported only here)."""
    from promptscout.evaluation.ray_evaluator import RayEvaluator

    resolver = getattr(cache.store, "get_soft", None) if cache is not None else None
    model, evaluator = config.model, config.evaluator
    return RayEvaluator(
        model.name,
        task,
        objectives,
        dtype=model.dtype,
        device=model.device,
        batch_size=model.batch_size,
        workers=evaluator.workers,
        address=evaluator.address,
        cpus_per_worker=evaluator.cpus_per_worker,
        gpus_per_worker=evaluator.gpus_per_worker,
        chunk_size=evaluator.chunk_size,
        cache=cache,
        soft_resolver=resolver,
    )


def load_campaign_model(config: CampaignConfig) -> LanguageModel:
    """The model a campaign file configures, loaded in this process."""
    from promptscout.model import load_model

    return load_model(
        config.model.name,
        dtype=config.model.dtype,
        device=config.model.device,
        batch_size=config.model.batch_size,
    )


def write_export(store: Store, path: Path, top: int | None) -> Path:
    """Write the export JSON of the ``top`` leaderboard rows (all when None)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = export_payload(store, build_leaderboard(store, top=top))
    # Soft prompts' tensors go beside the JSON (<stem>.soft.safetensors), which names the file.
    write_export_tensors(payload, path, store.get_soft)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
