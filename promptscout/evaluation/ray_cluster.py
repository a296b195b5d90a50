"""Ray plumbing for the Ray evaluator: starting or reaching a cluster quietly, checking that it
can place the actors, and one-line reasons from Ray's exceptions."""

from __future__ import annotations

import logging
from typing import Any

from promptscout.errors import PromptscoutError


def connect_ray(address: str) -> bool:
    """Initialise Ray quietly unless it already is; True when this call started it.

    ``""`` starts a private local instance (never someone's running cluster); other addresses
    connect to a running cluster.
    """
    import ray

    if ray.is_initialized():
        return False
    # Worker logs stay on the workers and Ray's notices out of the CLI's output (failures
    # still surface as exceptions).
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # A private instance with a small object store: units and results are small.
            ray.init(
                address="local",
                include_dashboard=False,
                object_store_memory=256 * 1024**2,
                **quiet,
            )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
        raise PromptscoutError(
            f"cannot start or reach {where}: {reason(exc)}; start a cluster with "
            '`ray start --head` (then address = "auto") or leave [evaluator] address empty'
        ) from None
    return True


def check_resources(workers: int, cpus: float, gpus: float) -> None:
    """Refuse actors the cluster can never place (Ray would wait for them forever)."""
    import ray

    total = ray.cluster_resources()
    needs = (("CPU", cpus, "cpus_per_worker"), ("GPU", gpus, "gpus_per_worker"))
    for name, per_worker, key in needs:
        have = float(total.get(name, 0.0))
        if per_worker > 0 and workers * per_worker > have + 1e-9:
            raise PromptscoutError(
                f"[evaluator] workers = {workers} with {key} = {per_worker:g} need "
                f"{workers * per_worker:g} {name}s but the Ray cluster has {have:g}; "
                f"lower workers or {key}, or add nodes"
            )


def reason(exc: BaseException) -> str:
    """A one-line reason from a (possibly Ray-wrapped) exception."""
    cause = getattr(exc, "cause", None) or exc
    lines = [line.strip() for line in str(cause).strip().splitlines() if line.strip()]
    line = lines[-1] if lines else type(cause).__name__
    return line if len(line) <= 300 else line[:297] + "..."
