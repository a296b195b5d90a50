"""What a campaign file builds: its task, objectives, model, evaluator, and the export file.

Kept apart from the loop in :mod:`promptscout.campaign` so benchmarks and tools can build the
same parts (a shared evaluator, the task with its label words) without running a campaign.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from promptscout.config import CampaignConfig
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluator
from promptscout.evaluation.cache import ScoreCache
from promptscout.leaderboard import build_leaderboard, export_payload
from promptscout.model import LanguageModel
from promptscout.objectives import Objective, resolve_objective
from promptscout.sections import ModelConfig
from promptscout.soft_tensors import write_export_tensors
from promptscout.store import Store
from promptscout.tasks import Task


def campaign_task(config: CampaignConfig) -> Task:
    """The task a campaign config names (a bundled set, a folder or a Hugging Face dataset,
    whose dev/test carving ``split_seed`` seeds), with its label words."""
    return config.task.load()


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
    scoring = RayEvaluator(
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
        chat=model.chat,
    )
    print(scoring.describe(), file=sys.stderr, flush=True)  # which nodes took the work
    return scoring


def load_campaign_model(config: CampaignConfig) -> LanguageModel:
    """The model a campaign file configures, loaded in this process."""
    return load_configured_model(config.model)


def load_configured_model(table: ModelConfig) -> LanguageModel:
    """The model a ``[model]``-shaped table (``[model]``, ``[proposer]``) describes: in-process,
    or a served model (``openai:ID``) reached through its server."""
    from promptscout.model import ServedOptions, load_model

    served = None
    if table.served:
        served = ServedOptions(
            base_url=table.base_url,
            api_key_env=table.api_key_env,
            scoring=table.scoring,
            chat=table.chat,
            concurrency=table.concurrency,
            timeout=table.timeout,
            max_retries=table.max_retries,
            requests_per_minute=table.requests_per_minute,
            top_logprobs=table.top_logprobs,
            deep_logprobs=table.deep_logprobs,
        )
    model = load_model(
        table.name,
        dtype=table.dtype,
        device=table.device,
        batch_size=table.batch_size,
        served=served,
    )
    model.chat = table.chat  # in-process models render chat prompts with their chat template
    return model


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
