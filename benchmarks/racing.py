"""Racing vs no racing: the same 100-candidate random-search campaign, same seed.

Random search proposes the same candidates whatever it is told, so both campaigns see the same
100 prompts; racing only decides how many dev examples each one costs. Prints the examples each
campaign scored, the saving, and the best candidate each found on the whole dev split. Run:

    .venv/bin/python benchmarks/racing.py [--candidates 100] [--seed 0]

Writes benchmarks/results/racing.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from promptscout.campaign import Campaign
from promptscout.config import parse_config
from promptscout.store import Store

CAMPAIGN = {
    "campaign": {"name": "racing-bench"},
    "task": {"name": "sst-2", "label_words": ["negative", "positive"]},
    "objective": {"name": ["cross_entropy", "accuracy"]},
    "budget": {"examples": 1_000_000},
    "leaderboard": {"top_k": 0},
    "searchers": [
        {
            "type": "random",
            "batch_size": 10,
            "cues": ["Sentiment:", "It was", "Answer:", "Overall, it was"],
            "label_word_candidates": [
                ["negative", "bad", "terrible"],
                ["positive", "good", "great"],
            ],
        }
    ],
}


def run_campaign(racing: bool, candidates: int, seed: int, folder: Path) -> dict:
    data = json.loads(json.dumps(CAMPAIGN))
    data["campaign"].update(seed=seed, store=str(folder / f"racing-{racing}.db"))
    data["budget"]["candidates"] = candidates
    data["racing"] = {"enabled": racing}
    config = parse_config(data)
    started = time.perf_counter()
    with Store(config.store_path) as store:
        campaign = Campaign(config, store)
        try:
            result = campaign.run()
        finally:
            campaign.close()
        prompts = store.count_prompts("dev")
    best = result.leaderboard[0]
    return {
        "racing": racing,
        "candidates": prompts,
        "fully_scored": len(result.leaderboard),
        "examples_scored": result.examples_scored,
        "seconds": round(time.perf_counter() - started, 1),
        "best_key": best.prompt.key,
        "best_dev": best.dev,
        "best_prompt": best.prompt.to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="racing vs no racing at equal candidates")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = run_campaign(False, args.candidates, args.seed, Path(tmp))
        raced = run_campaign(True, args.candidates, args.seed, Path(tmp))
    saving = 1 - raced["examples_scored"] / plain["examples_scored"]
    same_or_better = raced["best_dev"]["cross_entropy"] <= plain["best_dev"]["cross_entropy"]
    print(f"{'':10} {'candidates':>10} {'full dev':>9} {'examples':>9} {'seconds':>8}  best dev CE")
    for row in (plain, raced):
        name = "racing" if row["racing"] else "no racing"
        print(
            f"{name:10} {row['candidates']:>10} {row['fully_scored']:>9} "
            f"{row['examples_scored']:>9} {row['seconds']:>8}  "
            f"{row['best_dev']['cross_entropy']:.4f} (acc {row['best_dev']['accuracy']:.4f})"
        )
    print(
        f"examples saved by racing: {saving:.1%}; best dev candidate same or better: "
        f"{same_or_better} (same prompt: {plain['best_key'] == raced['best_key']})"
    )
    out = Path(__file__).parent / "results" / "racing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "no_racing": plain,
                "racing": raced,
                "saving": saving,
                "same_or_better": same_or_better,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
