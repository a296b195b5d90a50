"""Where the candidates came from and what they cost, from one pass over the store's
evaluations: how many were scored, completed, stopped by racing, failed, validated and re-scored
on the held-out split (the report's "what was scored"), and each finalist's origin, readout and
cost (its "where the finalists came from")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from promptscout.ensemble.types import Ensemble
from promptscout.leaderboard import LeaderboardEntry
from promptscout.prompts import Prompt
from promptscout.store import Store

# Searcher notes that say where a prompt came from, in the order the report shows them.
ORIGIN_KEYS = ("parents", "projection_of", "trial", "generation", "epoch", "algorithm")
REASONS = 3  # failure reasons shown


@dataclass
class Cost:
    """What scoring a candidate cost over all splits."""

    examples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.examples + other.examples,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.seconds + other.seconds,
        )


@dataclass
class Census:
    """How many candidates reached each stage.

    Attributes:
        scored: Distinct candidates with an evaluation on the search split.
        complete: Of those, scored on all of it (the ranked ones).
        stopped: Stopped early by racing (scored on part of it, no error).
        failed: Failed to score (an error), with the most common ``reasons`` and their counts.
        pool: Compared again by selection; ``validated``: of those, scored on their validation
            (training) examples too.
        held_out: Re-scored on the whole held-out split.
        ensembles: Ensemble rows pooling the finalists.
        costs: Per prompt key, what scoring it cost.
    """

    scored: int = 0
    complete: int = 0
    stopped: int = 0
    failed: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)
    pool: int = 0
    validated: int = 0
    held_out: int = 0
    ensembles: int = 0
    costs: dict[str, Cost] = field(default_factory=dict)

    def cost(self, candidate: Prompt | Ensemble) -> Cost:
        members = candidate.members if isinstance(candidate, Ensemble) else (candidate,)
        return sum((self.costs.get(p.key, Cost()) for p in members), Cost())


def _reason(error: str) -> str:
    line = error.strip().splitlines()[0] if error.strip() else "unknown error"
    return line if len(line) <= 160 else line[:159] + "\u2026"


def census(store: Store) -> Census:
    meta = store.meta
    search, whole = meta.search_split, meta.search_examples
    holdout, held_ids = meta.holdout_split, meta.holdout_examples
    found = Census()
    seen: dict[str, str] = {}  # key -> "complete" | "failed" | "stopped" on the search split
    errors: dict[str, str] = {}
    held: set[str] = set()
    for stored in store.evaluations():
        evaluation = stored.evaluation
        key = evaluation.prompt_key
        found.costs[key] = found.costs.get(key, Cost()) + Cost(
            evaluation.examples,
            evaluation.tokens,
            evaluation.completion_tokens,
            evaluation.seconds,
        )
        if evaluation.split == holdout and evaluation.ok and evaluation.example_ids == held_ids:
            held.add(key)
        if evaluation.split != search:
            continue
        if evaluation.ok and evaluation.example_ids == whole:
            seen[key] = "complete"
        elif not evaluation.ok and seen.get(key) != "complete":
            seen[key] = "failed"
            errors[key] = _reason(evaluation.error or "")
        else:
            seen.setdefault(key, "stopped")
    counts = Counter(seen.values())
    found.scored = len(seen)
    found.complete, found.stopped, found.failed = (
        counts[s] for s in ("complete", "stopped", "failed")
    )
    found.reasons = Counter(errors[k] for k, s in seen.items() if s == "failed").most_common(
        REASONS
    )
    found.pool = len(meta.selection)
    found.validated = sum(1 for r in meta.selection if r.get("validation_examples"))
    found.held_out = len(held) if held_ids else 0
    found.ensembles = len(meta.ensembles)
    return found


def origin(entry: LeaderboardEntry, ranks: dict[str, int]) -> list[str]:
    """Where a row came from, as short ``name: value`` lines: an ensemble's members (by rank),
    a prompt's searcher notes (parents, projection, trial, generation, epoch) where present."""
    if isinstance(entry.prompt, Ensemble):
        members = [f"#{ranks[p.key]}" if p.key in ranks else p.key for p in entry.prompt.members]
        return [f"pools {', '.join(members)}"]
    notes = entry.prompt.metadata
    lines = []
    for name in ORIGIN_KEYS:
        value = notes.get(name)
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(f"#{ranks[v]}" if v in ranks else str(v) for v in value)
        elif isinstance(value, str) and value in ranks:
            value = f"#{ranks[value]}"
        lines.append(f"{name.replace('_', ' ')}: {value}")
    return lines


def readout(candidate: Prompt | Ensemble) -> str:
    """How a row turns label-word scores into class scores."""
    if isinstance(candidate, Ensemble):
        text = f"{candidate.method} of {len(candidate.members)}"
        if candidate.weights:
            text += " (weights " + "/".join(f"{w:.2f}" for w in candidate.weights) + ")"
        return text + (", each calibrated (contextual)" if candidate.calibrate else "")
    if candidate.verbalizer:
        return f"{candidate.verbalizer} verbalizer on [{'/'.join(candidate.label_words)}]"
    words = f"label words [{'/'.join(candidate.label_words)}]" if candidate.label_words else "text"
    return words + (f", {candidate.calibration} calibration" if candidate.calibration else "")


def evidence(selection: dict[str, Any] | None) -> str:
    """Selection's evidence for a row: its score over the search and validation examples."""
    if not selection:
        return ""
    searched, validated = selection.get("search_examples", 0), selection.get("validation_examples")
    text = f"score {selection['score']:.4f} over {searched} search"
    text += f" + {validated} validation examples" if validated else " examples (not validated)"
    if selection.get("validation_score") is not None:
        text += f"; validation alone {selection['validation_score']:.4f}"
    return text
