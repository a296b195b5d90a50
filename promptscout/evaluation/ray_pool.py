"""The Ray evaluator's model-holding actors: started spread over the cluster's nodes, replaced
when they die, and put to work as soon as the cluster can place them.

An actor that dies (alone, or with its whole node) is replaced by a *pending* actor: Ray places
it where resources are free, which may be nowhere until a node joins. Work goes only to *ready*
actors (their model loaded, their fingerprint checked), so a campaign that lost a node carries
on with the actors it has, and a replacement joins the moment a node can hold it. When no actor
is ready and none can be placed for :data:`PLACEMENT_WAIT` seconds, scoring stops with one error
line (the work already scored is stored; ``resume`` continues); so does a start whose actors are
not all ready after as long (their CPUs held by other jobs: Ray would wait forever).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.evaluation.ray_cluster import reason

PLACEMENT_WAIT = 600.0  # seconds without any ready actor before scoring gives up
MAX_RESTARTS_PER_WORKER = 10  # replacements per worker before the pool stops replacing


class ActorPool:
    """Scoring actors of one class with one set of constructor arguments.

    Args:
        actor_class: A ``ray.remote`` class with ``fingerprint()`` and ``node()`` methods.
        args: Its constructor's arguments.
        size: How many actors the pool keeps (ready and pending together).
        model: The model's name, for error messages.

    Attributes:
        ready: Actors that hold the model and take work.
        restarts: Actors replaced after dying.
        fingerprint: The model's fingerprint, as the first actors reported it (:meth:`start`).
    """

    def __init__(self, actor_class: Any, args: tuple[Any, ...], size: int, model: str) -> None:
        self.actor_class = actor_class
        self.args = args
        self.size = size
        self.model = model
        self.ready: list[Any] = []
        self.pending: dict[Any, Any] = {}  # fingerprint ref -> actor not yet ready
        self.restarts = 0
        self.fingerprint = ""

    def start(self, timeout: float = PLACEMENT_WAIT) -> str:
        """Start :attr:`size` actors and wait until all hold the model; their fingerprint.

        Raises:
            PromptscoutError: a worker cannot load the model, workers loaded different
                versions of it, or some are not ready after ``timeout`` seconds (the CPUs they
                need are held by others: Ray would wait for them forever).
        """
        import ray

        actors = [self.actor_class.remote(*self.args) for _ in range(self.size)]
        self.ready = actors
        refs = [a.fingerprint.remote() for a in actors]
        try:
            _, waiting = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            if waiting:
                raise PromptscoutError(
                    f"{len(waiting)} of {self.size} Ray workers for model '{self.model}' were "
                    f"not ready after {timeout:.0f} s (the cluster has {_free_cpus()} free "
                    "CPUs; other jobs may hold the rest); free them, or lower [evaluator] workers"
                )
            prints = ray.get(refs)
        except ray.exceptions.RayError as exc:
            raise PromptscoutError(
                f"Ray workers could not load model '{self.model}': {reason(exc)}"
            ) from None
        if len(set(prints)) > 1:
            raise PromptscoutError(
                f"Ray workers loaded different versions of model '{self.model}' (fingerprints "
                f"{sorted(set(prints))}); install the same model on every node"
            )
        self.fingerprint = prints[0]
        return self.fingerprint

    def lost(self, actor: Any) -> None:
        """``actor`` died: drop it and ask for a replacement (pending until placed); a second
        report of the same death changes nothing."""
        import ray

        if actor not in self.ready:
            return
        self.ready.remove(actor)
        with contextlib.suppress(Exception):  # already gone
            ray.kill(actor, no_restart=True)
        self._replace()

    def _replace(self) -> None:
        if self.restarts >= MAX_RESTARTS_PER_WORKER * self.size:
            return  # a cluster that kills every actor: carry on with what is left
        self.restarts += 1
        actor = self.actor_class.remote(*self.args)
        self.pending[actor.fingerprint.remote()] = actor

    def join(self, ref: Any) -> None:
        """A pending actor's fingerprint arrived (``ref``): it takes work from now on, or, if it
        died before it was ready, it is replaced in turn.

        Raises:
            PromptscoutError: it loaded another version of the model.
        """
        import ray

        actor = self.pending.pop(ref)
        try:
            fingerprint = ray.get(ref)
        except ray.exceptions.RayError:
            self._replace()
            return
        if fingerprint != self.fingerprint:
            raise PromptscoutError(
                f"a Ray worker loaded another version of model '{self.model}' (fingerprint "
                f"{fingerprint}, expected {self.fingerprint}); install the same model on every node"
            )
        self.ready.append(actor)

    def poll(self) -> None:
        """Put to work every pending actor that is ready by now (no waiting)."""
        import ray

        if self.pending:
            done, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
            for ref in done:
                self.join(ref)

    def wait_for_one(self, timeout: float = PLACEMENT_WAIT) -> None:
        """Wait until an actor is ready (every one was lost).

        Raises:
            PromptscoutError: none is ready after ``timeout`` seconds (no node can hold one).
        """
        import ray

        deadline = time.monotonic() + timeout
        while not self.ready:
            left = deadline - time.monotonic()
            if not self.pending:
                self._replace()
            if left <= 0 or not self.pending:
                raise PromptscoutError(
                    f"no Ray worker for model '{self.model}' could be placed for {timeout:.0f} "
                    f"s after the others died (the cluster has {_free_cpus()} free CPUs); add "
                    "a node, then `promptscout resume` the store"
                )
            done, _ = ray.wait(list(self.pending), num_returns=1, timeout=left)
            for ref in done:
                self.join(ref)

    def nodes(self) -> list[str]:
        """The node id of every ready actor (where the work runs); an actor that died and
        whose death scoring has not met yet is left out."""
        import ray

        found = []
        for ref in [a.node.remote() for a in self.ready]:
            with contextlib.suppress(ray.exceptions.RayActorError):
                found.append(ray.get(ref))
        return found

    def close(self) -> None:
        """Stop every actor, ready or pending."""
        import ray

        for actor in [*self.ready, *self.pending.values()] if ray.is_initialized() else ():
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor, no_restart=True)
        self.ready, self.pending = [], {}


def _free_cpus() -> str:
    import ray

    with contextlib.suppress(Exception):
        return f"{float(ray.available_resources().get('CPU', 0.0)):g}"
    return "unknown"
