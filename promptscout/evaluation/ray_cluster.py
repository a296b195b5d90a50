"""Ray plumbing for the Ray evaluator: starting or reaching a cluster quietly, checking that it
can place the actors, noticing that its head is gone, and one-line reasons from Ray's
exceptions."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from typing import Any

from promptscout.errors import PromptscoutError

# Ray Client (a ray:// address): the cluster's client server forks a server per connection,
# and that fork intermittently dies in gRPC (ray-project/ray#63202, open), failing the
# connection with one of these messages: Ray's own, or, when the fork died while the proxier
# was reading its command line (ray/util/client/server/proxier.py waits for the fork that way),
# psutil's exception passed on as the reason; the next connection gets a new fork.
CLIENT_START_FAILED = ("Starting Ray client server failed", "psutil.ZombieProcess")
CLIENT_START_ATTEMPTS = 3


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
    attempt = 1
    while True:
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
            return True
        except (ConnectionError, ValueError, RuntimeError) as exc:
            if attempt < CLIENT_START_ATTEMPTS and any(m in str(exc) for m in CLIENT_START_FAILED):
                ray.shutdown()
                attempt += 1
                continue  # the client server forks a new server for the new connection
            where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
            raise PromptscoutError(
                f"cannot start or reach {where}: {reason(exc)}; {_fix(address)}"
            ) from None


def _fix(address: str) -> str:
    """What to do when the cluster at ``address`` (``""``: a private instance) cannot be reached."""
    if not address:
        return 'start a cluster with `ray start --head` and set [evaluator] address = "auto"'
    if os.environ.get("RAY_AUTH_MODE") != "token":
        # Ray only logs its refusal of a missing token; the exception says "failed to connect".
        return (
            "is it running? If it was started by `ray start --head` (token authentication, Ray "
            "2.59 and later), set RAY_AUTH_MODE=token and copy the head's ~/.ray/auth_token here"
        )
    return "is it running? Start one with `ray start --head`, or leave [evaluator] address empty"


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


RAY_CLIENT_PORT = 10001  # Ray Client's port when a ray:// address names none
HEAD_LOST_AFTER = 15.0  # seconds the head's GCS refuses connections before the cluster is lost
_PROBE_EVERY = 1.0


class HeadWatch:
    """Watches the cluster's head (its GCS port) from a daemon thread while a campaign scores.

    Ray's driver does not raise when the head dies: its calls wait, and after a minute the
    process is aborted with Ray's own log. When the head's port has refused connections for
    ``lost_after`` seconds, this prints one ``error:`` line saying how to go on and ends the
    process with exit code 2, as the CLI does for any error. Everything scored so far is
    committed to the store (SQLite), and ``promptscout resume`` continues, as after ``kill -9``.
    """

    def __init__(self, gcs_address: str, cluster: str, lost_after: float = HEAD_LOST_AFTER) -> None:
        host, _, port = gcs_address.rpartition(":")
        self.where = (host or "127.0.0.1", int(port))
        self.cluster = cluster
        self.lost_after = lost_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ray-head-watch", daemon=True)
        self._thread.start()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(self.where, timeout=2.0):
                return True
        except OSError:
            return False

    def _watch(self) -> None:
        silent = 0.0
        while not self._stop.wait(_PROBE_EVERY):
            silent = 0.0 if self._answers() else silent + _PROBE_EVERY
            if silent >= self.lost_after and not self._stop.is_set():
                host, port = self.where
                print(  # on a line of its own, after whatever progress bar was drawing
                    f"\nerror: lost the Ray cluster at '{self.cluster}' (its head {host}:{port} "
                    f"has not answered for {silent:.0f} s); what was scored is stored: start "
                    "the cluster again, then `promptscout resume` the store",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(2)  # Ray's driver would hang, then abort: stop now, with one line

    def stop(self) -> None:
        self._stop.set()


def watch_head(address: str) -> HeadWatch | None:
    """A :class:`HeadWatch` on the cluster at ``address``: None for a private instance (it
    lives and dies with this process) or where Ray gives no GCS address.

    Through Ray Client (``ray://HOST:PORT``) the watch is on the client server the driver
    talks to, which runs on the head: a driver outside the cluster may reach only that port,
    and a watch on the GCS port would take a firewall for a lost head.
    """
    import ray

    if not address:
        return None
    if address.startswith("ray://"):
        server = address.removeprefix("ray://").split("/", 1)[0]
        return HeadWatch(server if ":" in server else f"{server}:{RAY_CLIENT_PORT}", address)
    try:
        gcs = ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001 - no GCS address to watch: nothing to watch
        return None
    return HeadWatch(gcs, address) if gcs else None
