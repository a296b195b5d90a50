"""Ray evaluator overhead: the same 2,000-example campaign scored in-process and on 2 Ray actors.

A random-search campaign on SST-2 (racing on, embedded model, fp32) runs twice with the same
seed: once with the local evaluator (torch's default threads: one per physical core) and once
with the Ray evaluator on 2 actors of 1 CPU and 1 torch thread each. Each run's time is split
into startup (building the evaluator: loading the model, or starting Ray and its actors) and
search (the campaign loop, which is what the evaluators are compared on); scored examples/s is
the search's examples over its time. Both campaigns must end with the same leaderboard. Run:

    flock /tmp/promptscout-heavy.lock .venv/bin/python benchmarks/ray_overhead.py [--examples 2000]

Acceptance: the Ray search takes at most 1.15x the local search's time on a 2-core machine
(and less where there are more cores). Writes benchmarks/results/ray_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from promptscout.campaign import Campaign
from promptscout.config import parse_config
from promptscout.store import Store

CAMPAIGN = {
    "campaign": {"name": "ray-overhead", "seed": 0},
    "task": {"name": "sst-2", "label_words": ["negative", "positive"]},
    "objective": {"name": ["cross_entropy", "accuracy"]},
    "leaderboard": {"top_k": 0},
    "searchers": [
        {
            "type": "random",
            "batch_size": 8,
            "cues": ["Sentiment:", "It was", "Answer:", "Overall, it was"],
            "label_word_candidates": [
                ["negative", "bad", "terrible"],
                ["positive", "good", "great"],
            ],
            "max_demos": 1,
        }
    ],
}


def run_campaign(evaluator: dict, examples: int, folder: Path) -> dict:
    data = json.loads(json.dumps(CAMPAIGN))
    data["campaign"]["store"] = str(folder / f"{evaluator['type']}.db")
    data["budget"] = {"examples": examples}
    data["evaluator"] = evaluator
    config = parse_config(data)
    with Store(config.store_path) as store:
        campaign = Campaign(config, store, progress=False)
        try:
            started = time.perf_counter()
            campaign.evaluator  # noqa: B018 - build it now: startup is timed on its own
            startup = time.perf_counter() - started
            started, load_before = time.perf_counter(), os.getloadavg()[0]
            result = campaign.run()
            search = time.perf_counter() - started
            load_after = os.getloadavg()[0]
        finally:
            campaign.close()
    return {
        "evaluator": evaluator,
        "startup_seconds": round(startup, 1),
        "search_seconds": round(search, 1),
        "examples_scored": result.examples_scored,
        "examples_per_second": round(result.examples_scored / search, 2),
        "candidates": result.evaluations,
        # The 1-minute load average before and after the search: anything well above the
        # workers' 2 means other processes competed for the cores.
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "leaderboard": [(e.prompt.key, e.dev) for e in result.leaderboard],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="local vs Ray evaluator, same campaign")
    parser.add_argument("--examples", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local = run_campaign({"type": "local"}, args.examples, Path(tmp))
        ray = run_campaign(
            {"type": "ray", "workers": 2, "cpus_per_worker": 1.0}, args.examples, Path(tmp)
        )
    ratio = ray["search_seconds"] / local["search_seconds"]
    same_keys = [k for k, _ in ray["leaderboard"]] == [k for k, _ in local["leaderboard"]]
    print(f"{'':6} {'startup s':>9} {'search s':>9} {'examples':>9} {'ex/s':>7}")
    for name, row in (("local", local), ("ray", ray)):
        print(
            f"{name:6} {row['startup_seconds']:>9} {row['search_seconds']:>9} "
            f"{row['examples_scored']:>9} {row['examples_per_second']:>7}"
        )
    print(
        f"ray / local search time: {ratio:.3f} (acceptance <= 1.15: {ratio <= 1.15}); "
        f"same leaderboard: {same_keys}"
    )
    out = Path(__file__).parent / "results" / "ray_overhead.json"
    out.parent.mkdir(exist_ok=True)
    summary = {
        "cpus": os.cpu_count(),
        "local": {k: v for k, v in local.items() if k != "leaderboard"},
        "ray": {k: v for k, v in ray.items() if k != "leaderboard"},
        "ratio": round(ratio, 3),
        "accepted": ratio <= 1.15,
        "same_leaderboard": same_keys,
        "best": local["leaderboard"][0] if local["leaderboard"] else None,
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
