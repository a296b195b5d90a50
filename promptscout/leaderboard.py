"""The leaderboard: every candidate of every searcher, ranked on the search split, with held-out
scores for the finalists, and the export format.

It reads only the store, so it needs neither the model nor plug-in code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from promptscout.objectives import Ranking
from promptscout.prompts import Prompt
from promptscout.store import Store

EXPORT_FORMAT = "promptscout-export/1"


@dataclass
class LeaderboardEntry:
    """One ranked row.

    Attributes:
        rank: 1 is best.
        searcher: The searcher that first proposed the prompt.
        kind: ``"prompt"`` (ensembles come later).
        prompt: The prompt.
        dev: Objective values on the whole search split, or None.
        test: Objective values on the whole held-out split, or None when not re-scored.
        score: The ranking score on the ranked split.
    """

    rank: int
    searcher: str
    kind: str
    prompt: Prompt
    dev: dict[str, float] | None
    test: dict[str, float] | None
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "searcher": self.searcher,
            "kind": self.kind,
            "key": self.prompt.key,
            "prompt": self.prompt.to_dict(),
            "dev": self.dev,
            "test": self.test,
        }


def _full_split_values(store: Store, split_meta: str, split: str) -> dict[str, dict[str, float]]:
    """Objective values of every prompt scored without error on all of a split (latest wins)."""
    ids = store.get_meta(split_meta)
    if ids is None:
        return {}
    return {
        stored.evaluation.prompt_key: stored.evaluation.objectives
        for stored in store.evaluations(split, ids)
        if stored.evaluation.ok
    }


def build_leaderboard(
    store: Store, *, split: str = "dev", top: int | None = None
) -> list[LeaderboardEntry]:
    """Rank every prompt in ``store``.

    Args:
        store: A campaign store.
        split: ``"dev"`` ranks by the search split (all candidates); ``"test"`` ranks the
            candidates that were re-scored on the held-out split by that score.
        top: Keep the best ``top`` rows.
    """
    ranking = Ranking.from_dict(store.get_meta("ranking"))
    config = store.get_meta("config")
    dev = _full_split_values(store, "search_examples", config["task"]["search_split"])
    test = _full_split_values(store, "holdout_examples", config["task"]["holdout_split"])
    ranked_by = dev if split == "dev" else test
    rows = []
    for key, (prompt, searcher) in store.prompts().items():
        if key not in ranked_by:
            continue
        rows.append(
            LeaderboardEntry(
                0,
                searcher,
                "prompt",
                prompt,
                dev.get(key),
                test.get(key),
                ranking.score(ranked_by[key]),
            )
        )
    # Ties: the earlier prompt (store order) keeps the better rank, so ranks are reproducible.
    rows.sort(key=lambda e: -e.score if math.isfinite(e.score) else math.inf)
    for i, row in enumerate(rows, start=1):
        row.rank = i
    return rows[:top] if top else rows


def format_table(entries: list[LeaderboardEntry], objectives: list[str]) -> str:
    """A plain-text table for terminals."""
    head = (
        ["rank", "searcher"]
        + [f"dev {o}" for o in objectives]
        + [f"test {o}" for o in objectives]
        + ["prompt"]
    )
    lines = []
    for e in entries:
        cells = [str(e.rank), e.searcher]
        for values in (e.dev, e.test):
            cells += [
                "-" if values is None or o not in values else f"{values[o]:.4f}" for o in objectives
            ]
        cells.append(describe(e.prompt))
        lines.append(cells)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head) - 1)]
    out = []
    for row in [head, *lines]:
        # The last (prompt) column has no width: strict=False pairs the others with theirs.
        out.append(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return "\n".join(out)


def describe(prompt: Prompt, width: int = 90) -> str:
    """One line showing a prompt: template with visible newlines, label words, extras."""
    text = prompt.template.replace("\n", "\\n")
    if prompt.instruction:
        text = prompt.instruction.replace("\n", "\\n") + " | " + text
    text += f"  [{'/'.join(prompt.label_words)}]"
    if prompt.demos:
        text += f" +{len(prompt.demos)} demos"
    return text if len(text) <= width else text[: width - 3] + "..."


def export_payload(store: Store, entries: list[LeaderboardEntry]) -> dict[str, Any]:
    """The export document: enough to re-score every prompt with ``promptscout evaluate``."""
    config = store.get_meta("config")
    return {
        "format": EXPORT_FORMAT,
        "campaign": config["name"],
        "model": {"name": config["model"]["name"], "fingerprint": store.get_meta("fingerprint")},
        "task": {
            "spec": config["task"]["path"] or config["task"]["name"],
            "split_seed": config["task"]["split_seed"],
        },
        "ranking": store.get_meta("ranking"),
        "entries": [e.to_dict() for e in entries],
    }
