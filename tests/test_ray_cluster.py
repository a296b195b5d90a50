"""Campaigns on a real multi-node Ray cluster: ``ray.cluster_utils.Cluster`` starts a raylet per
node, as ``ray start`` does on each machine (here all on 127.0.0.1, one CPU each).

A campaign joins the running cluster by address (``HOST:PORT``, and ``auto`` through
``RAY_ADDRESS``), its actors spread over the nodes, a whole worker node (raylet and actors) is
killed mid-campaign, the campaign carries on with the node left, a node that joins later is put
to work, and the store ends as a local run's: the same evaluations in the same order, nothing
lost or counted twice, the same leaderboard. Losing the head stops the campaign (a separate
process, as Ray aborts a driver that lost its head) with one error line, and ``resume`` with
the cluster back ends where a straight run ends. A cluster started with the ``ray start``
command itself, token authentication on, is joined by address and through Ray Client
(``ray://``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from served_fixtures import free_port
from test_ray import RACING, ray_with_hook, run, same, stored
from test_reliability import (
    cli,
    error_line,
    leaderboard,
    stored_evaluations,
    wait_for_evaluations,
)

from promptscout.builders import ray_evaluator
from promptscout.config import load_config

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

RAY_CLI = str(Path(sys.executable).with_name("ray"))  # the `ray` command of this environment
NODE = {"num_cpus": 1, "object_store_memory": 96 * 1024**2}


@pytest.fixture
def cluster():
    """A head node and one worker node, one CPU each; shut down after the test."""
    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={**NODE, "include_dashboard": False}
    )
    worker = cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    yield cluster, worker
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def same_leaderboard(ours: list[tuple], local: list[tuple]) -> None:
    """The local run's leaderboard: the same rows; values (and ensembles' fitted biases) equal
    up to how the actors batched the floats."""
    prompts = [(r[0], r[1], r[2] if r[1] != "ensemble" else "") for r in ours]
    assert prompts == [(r[0], r[1], r[2] if r[1] != "ensemble" else "") for r in local]
    for mine, theirs in zip(ours, local, strict=True):
        for values, expected in zip(mine[3:], theirs[3:], strict=True):
            assert values == (pytest.approx(expected, rel=1e-6) if expected else expected)


def on_cluster(address: str) -> str:
    return f'\n[evaluator]\ntype = "ray"\nworkers = 2\nchunk_size = 3\naddress = "{address}"\n'


@pytest.mark.slow
def test_a_campaign_survives_losing_a_node_and_uses_one_that_joins(
    cluster, write_campaign, tmp_path
):
    cluster, worker = cluster
    local = load_config(write_campaign("local.toml", budget=200, extra=RACING))
    local.store = str(tmp_path / "local.db")
    run(local)

    config = load_config(
        write_campaign("ray.toml", budget=200, extra=RACING + on_cluster(cluster.address))
    )
    config.store = str(tmp_path / "ray.db")
    seen: dict[str, object] = {}

    def losing_a_node(evaluator, n):
        if n == 3:  # both nodes hold an actor: spread, not packed
            seen["spread"] = set(evaluator.nodes())
        if n == 6:  # a whole node goes, its raylet and its actor
            cluster.remove_node(worker)
        if n == 12:  # the campaign went on; a new node joins
            seen["after_loss"] = len(evaluator.actors)
            seen["joined"] = cluster.add_node(**NODE).node_id
            deadline = time.monotonic() + 120
            while len(evaluator.actors) < 2 and time.monotonic() < deadline:
                evaluator.refresh()
                time.sleep(0.2)
        seen["last"] = set(evaluator.nodes())

    run(config, evaluator_factory=ray_with_hook(losing_a_node))

    assert seen["spread"] == {cluster.head_node.node_id, worker.node_id}
    assert seen["after_loss"] == 1  # the lost node's replacement had nowhere to go ...
    assert seen["joined"] in seen["last"]  # ... until a node joined: it takes work
    (local_rows, local_board, local_evals) = stored(local.store_path)
    (ray_rows, ray_board, ray_evals) = stored(config.store_path)
    # The same evaluations in the same order, nothing lost, nothing twice.
    assert ray_rows == local_rows and len(set(ray_rows)) == len(ray_rows)
    same([s.evaluation for s in ray_evals], [s.evaluation for s in local_evals])
    assert [(e.prompt.key, e.kind) for e in ray_board] == [
        (e.prompt.key, e.kind) for e in local_board
    ]


@pytest.mark.slow
def test_a_campaign_joins_by_auto_address(cluster, write_campaign, tmp_path, monkeypatch):
    cluster, worker = cluster
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    config = load_config(write_campaign("auto.toml", budget=48, extra=on_cluster("auto")))
    config.store = str(tmp_path / "auto.db")
    nodes: list[set[str]] = []

    def recording(task, objectives, evaluator_config, cache):
        evaluator = ray_evaluator(task, objectives, evaluator_config, cache)
        nodes.append(set(evaluator.nodes()))
        return evaluator

    run(config, evaluator_factory=recording)
    assert nodes == [{cluster.head_node.node_id, worker.node_id}]
    assert ray.is_initialized() is False  # the campaign left; the cluster is the user's
    assert len(cluster.list_all_nodes()) == 2


@pytest.mark.slow
def test_losing_the_head_stops_with_one_line_and_resume_continues(
    write_campaign, tmp_path, capsys, monkeypatch
):
    # The clusters and the campaign's processes agree on no token authentication, whatever an
    # earlier ray.init in this process left in the environment (it sets RAY_AUTH_MODE=token).
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    port = free_port()

    def start_cluster():
        head = {**NODE, "include_dashboard": False, "gcs_server_port": port}
        started = cluster_utils.Cluster(initialize_head=True, head_node_args=head)
        started.add_node(**NODE)
        started.wait_for_nodes()
        return started

    local = write_campaign("local.toml", budget=200, extra=RACING)
    code, _, err = cli(capsys, "run", str(local), "--store", str(tmp_path / "local.db"))
    assert code == 0, err

    first = start_cluster()
    address = first.address
    path = write_campaign("ray.toml", budget=200, extra=RACING + on_cluster(address))
    store = tmp_path / "tiny.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptscout", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        if not wait_for_evaluations(proc, store, 4):
            pytest.fail(f"the campaign ended before the head was lost: {proc.communicate()[1]}")
        before = stored_evaluations(store)
        first.remove_node(first.head_node)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        first.shutdown()
    assert proc.returncode == 2
    assert "lost the Ray cluster" in error_line(err) and "promptscout resume" in err
    kept = stored_evaluations(store)
    assert all(kept[k] == v for k, v in before.items())  # nothing stored was lost

    second = start_cluster()  # the cluster back, at the same address
    try:
        assert second.address == address
        resumed = subprocess.run(
            [sys.executable, "-m", "promptscout", "resume", str(store)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    finally:
        second.shutdown()
    assert resumed.returncode == 0, resumed.stderr
    assert all(stored_evaluations(store)[k] == v for k, v in kept.items())
    same_leaderboard(leaderboard(capsys, store), leaderboard(capsys, tmp_path / "local.db"))


class RayStartCluster:
    """A head and a worker node started with the ``ray start`` command, as the README tells
    users to, each in the foreground (``--block``) so that ending its process stops the node.
    Token authentication is on, with a token of the test's own (not the user's
    ``~/.ray/auth_token``); the cluster's files live in a temporary folder of its own."""

    def __init__(self) -> None:
        # Short: Ray puts unix sockets under it (their paths are limited to ~100 characters).
        self.folder = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
        token = self.folder / "auth_token"
        token.write_text(uuid.uuid4().hex, encoding="utf-8")
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "PYTHONUNBUFFERED": "1",
            # The client server gives the per-client server it starts 30 s to answer; on 2 busy
            # cores that start once took 40 s (the suite's second run of the day), so the client
            # campaign failed before it began. The test is of joining, not of start-up speed.
            "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120",
        }
        self.port, self.client_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []
        node = ["--num-cpus=1", f"--object-store-memory={NODE['object_store_memory']}"]
        self._start(
            "--head",
            f"--port={self.port}",
            f"--ray-client-server-port={self.client_port}",
            "--include-dashboard=false",
            f"--temp-dir={self.folder}",
            *node,
        )
        self._start(f"--address={self.address}", *node)

    def _start(self, *args: str) -> None:
        log = open(self.folder / f"node{len(self.nodes)}.log", "w")  # noqa: SIM115 - kept open
        self.nodes.append(
            subprocess.Popen(
                [RAY_CLI, "start", "--block", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        )
        self.wait_for(len(self.nodes))

    def wait_for(self, nodes: int, timeout: float = 120.0) -> None:
        """Wait until ``ray status`` counts ``nodes`` active nodes."""
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.nodes):
                break
            status = subprocess.run(
                [RAY_CLI, "status", f"--address={self.address}"],
                capture_output=True,
                text=True,
                env=self.env,
            ).stdout
            active = status.split("Active:", 1)[-1].split("Pending:", 1)[0]
            if "Active:" in status and active.count("node_") == nodes:
                return
            time.sleep(1.0)
        logs = "\n".join(p.read_text()[-2000:] for p in sorted(self.folder.glob("node*.log")))
        pytest.fail(f"the ray start cluster did not come up with {nodes} nodes:\n{status}{logs}")

    def stop(self) -> None:
        for process in reversed(self.nodes):  # worker first, then the head
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.mark.slow
def test_a_cluster_started_with_ray_start_is_joined_by_address_and_by_ray_client(
    write_campaign, tmp_path, capsys
):
    local = write_campaign("local.toml", budget=120, extra=RACING)
    code, _, err = cli(capsys, "run", str(local), "--store", str(tmp_path / "local.db"))
    assert code == 0, err
    started = RayStartCluster()
    try:
        for name, address in [
            ("gcs", started.address),
            ("client", f"ray://127.0.0.1:{started.client_port}"),
        ]:
            path = write_campaign(f"{name}.toml", budget=120, extra=RACING + on_cluster(address))
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "promptscout",
                    "run",
                    str(path),
                    "--store",
                    str(tmp_path / f"{name}.db"),
                ],  # fmt: skip
                capture_output=True,
                text=True,
                env=started.env,
                timeout=600,
            )
            assert run.returncode == 0, run.stderr[-3000:]
            # The campaign says where its actors run: one on each node, not both on the head.
            assert f"ray: 2 worker(s) on 2 of the 2 node(s) of the Ray cluster at '{address}'" in (
                run.stderr
            )
            same_leaderboard(
                leaderboard(capsys, tmp_path / f"{name}.db"),
                leaderboard(capsys, tmp_path / "local.db"),
            )
    finally:
        started.stop()
