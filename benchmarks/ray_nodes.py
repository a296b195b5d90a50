"""One node with 2 actors vs 2 nodes with 1 actor each: the same campaign on a Ray cluster.

Both clusters are started with ``ray.cluster_utils.Cluster`` (real raylets, as ``ray start``
starts them) on this machine: a head of 2 CPUs; then a head of 1 CPU plus a worker node of 1
CPU. The campaign (benchmarks/ray_overhead.py's random search on SST-2, embedded model) joins
each by address with 2 actors of 1 CPU; Ray spreads them over the nodes. On one 2-core machine
the two layouts have the same cores, so the point is the path (the same leaderboard, actors on
both nodes), not the speed: expect parity. Run:

    flock /tmp/promptscout-heavy.lock .venv/bin/python benchmarks/ray_nodes.py [--examples 1000]

Writes benchmarks/results/ray_nodes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from ray.cluster_utils import Cluster
from ray_overhead import run_campaign

LAYOUTS = {"1 node x 2 actors": (2,), "2 nodes x 1 actor": (1, 1)}


def on_cluster(cpus: tuple[int, ...], examples: int, folder: Path) -> dict:
    """The campaign on a cluster whose nodes have ``cpus`` CPUs (the first is the head)."""
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": cpus[0], "include_dashboard": False}
    )
    try:
        for n in cpus[1:]:
            cluster.add_node(num_cpus=n)
        cluster.wait_for_nodes()
        evaluator = {"type": "ray", "workers": 2, "cpus_per_worker": 1.0,
                     "address": cluster.address}  # fmt: skip
        row = run_campaign(evaluator, examples, folder)
    finally:
        cluster.shutdown()
    row["nodes"] = len(cpus)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description="1 node x 2 actors vs 2 nodes x 1 actor")
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cpus in LAYOUTS.items():
            (Path(tmp) / f"{len(cpus)}-nodes").mkdir()
            rows[name] = on_cluster(cpus, args.examples, Path(tmp) / f"{len(cpus)}-nodes")
    one, two = rows.values()
    ratio = two["search_seconds"] / one["search_seconds"]
    same = [k for k, _ in one["leaderboard"]] == [k for k, _ in two["leaderboard"]]
    for name, row in rows.items():
        print(
            f"{name}: startup {row['startup_seconds']} s, search {row['search_seconds']} s, "
            f"{row['examples_scored']} examples ({row['examples_per_second']} ex/s), load "
            f"{row['load_average']}"
        )
    print(f"2 nodes / 1 node search time: {ratio:.3f}; same leaderboard: {same}")
    out = Path(__file__).parent / "results" / "ray_nodes.json"
    summary = {
        "cpus": os.cpu_count(),
        "layouts": {n: {k: v for k, v in r.items() if k != "leaderboard"} for n, r in rows.items()},
        "ratio": round(ratio, 3),
        "same_leaderboard": same,
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
