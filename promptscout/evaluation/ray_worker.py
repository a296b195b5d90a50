"""The Ray actor side of :class:`~promptscout.evaluation.ray_evaluator.RayEvaluator`.

A :class:`ScoringWorker` loads the model once and then scores work units: a few prompts that
share label words on a chunk of examples. Everything a unit carries is plain data (prompt dicts,
example ids, fields and labels, raw score-cache entries), so a worker needs the model and
promptscout, never the task files or the campaign store. The scoring itself is the
:class:`~promptscout.evaluation.local.LocalEvaluator`'s, on a task made of the unit's examples;
objectives are left to the driver, which computes them on a prompt's merged outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptscout.evaluation.cache import ScoreCache
from promptscout.evaluation.local import LocalEvaluator
from promptscout.prompts import Prompt
from promptscout.tasks import SPLITS, Example, Task


def plain_example(example: Example) -> list[Any]:
    """An example as plain data: ``[id, fields, label]``."""
    return [example.id, dict(example.fields), example.label]


def task_header(task: Task) -> dict[str, Any]:
    """What a worker needs to know about the task besides the examples a unit brings."""
    return {
        "name": task.name,
        "kind": task.kind,
        "classes": list(task.classes),
        "label_words": list(task.label_words),
        "input_fields": list(task.input_fields),
    }


def unit_task(
    header: dict[str, Any], split: str, examples: Sequence[list[Any]], demos: Sequence[list[Any]]
) -> Task:
    """A task holding a unit's examples in ``split`` and its demonstrations in another split
    (lookups by id search every split). A pseudo-split (content-free inputs) is the task's own."""
    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    if split in SPLITS:
        splits[split] = [Example(i, fields, label) for i, fields, label in examples]
    seen = {e.id for e in splits.get(split, [])}
    extra = [Example(i, fields, label) for i, fields, label in demos if i not in seen]
    splits["train" if split != "train" else "dev"].extend(extra)
    return Task(**header, **splits)


class MemoryBackend:
    """A score-cache backend in a dictionary: seeded with the entries the driver found in the
    store, it records what the model computes so the driver can store it."""

    def __init__(self, known: dict[str, Any]) -> None:
        self.entries = dict(known)
        self.computed: list[tuple[str, Any]] = []

    def cached_outputs(self, keys: Sequence[str]) -> dict[str, Any]:
        return {k: self.entries[k] for k in keys if k in self.entries}

    def cache_outputs(self, items: Sequence[tuple[str, Any]]) -> None:
        for key, value in items:
            self.entries[key] = value
        self.computed.extend(items)


class ScoringWorker:
    """Holds one model; scores work units with the local evaluator's code.

    Used as a Ray actor (``ray.remote(ScoringWorker)``) but plain Python, so it runs without Ray
    too.

    Args:
        model: ``load_model`` arguments: ``name``, ``dtype``, ``device``, ``batch_size``.
        header: :func:`task_header` of the campaign's task.
        threads: Torch threads (the worker's CPU share); None keeps the default.
        max_new_tokens: Generation length for generation tasks.
        texts_per_call: Texts sent to the model at once.
    """

    def __init__(
        self,
        model: dict[str, Any],
        header: dict[str, Any],
        threads: int | None = None,
        max_new_tokens: int = 32,
        texts_per_call: int = 128,
    ) -> None:
        from promptscout.model import load_model
        from promptscout.model.compute import configure_threads

        if threads is not None:
            configure_threads(threads)
        self.model = load_model(
            model["name"],
            dtype=model["dtype"],
            device=model["device"],
            batch_size=model["batch_size"],
        )
        self.header = header
        self.max_new_tokens = max_new_tokens
        self.texts_per_call = texts_per_call

    def fingerprint(self) -> str:
        return self.model.fingerprint

    def node(self) -> str:
        """The id of the Ray node this worker runs on ("" outside Ray)."""
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""

    def score(self, unit: dict[str, Any]) -> dict[str, Any]:
        """Score one unit.

        Args:
            unit: ``split``; ``prompts`` (prompt dicts sharing label words and soft prompt);
                ``examples`` and ``demos`` (:func:`plain_example` lists); ``known`` (score-cache
                entries, key to raw value, for texts already scored); ``soft`` (digest to the
                soft prompt's NumPy tensors).

        Returns:
            ``evaluations``: one :meth:`Evaluation.to_dict` per prompt, in unit order, holding
            raw outputs (no readout, no objective values); ``computed``: new score-cache
            entries (key, raw value); ``fingerprint``: the model's.
        """
        split = unit["split"]
        task = unit_task(self.header, split, unit["examples"], unit["demos"])
        backend = MemoryBackend(unit["known"])
        evaluator = LocalEvaluator(
            self.model,
            task,
            [],
            texts_per_call=self.texts_per_call,
            max_new_tokens=self.max_new_tokens,
            cache=ScoreCache(backend),
            soft_resolver=unit["soft"].get,
        )
        prompts = [Prompt.from_dict(p) for p in unit["prompts"]]
        examples = [Example(i, fields, label) for i, fields, label in unit["examples"]]
        by_key = {e.prompt_key: e for e in evaluator.iter_raw(prompts, split, examples)}
        return {
            "evaluations": [by_key[p.key].to_dict() for p in prompts],
            "computed": backend.computed,
            "fingerprint": self.model.fingerprint,
        }
