"""Where written prompts came from: the winner's family tree (parents, the operator that made
each child, the feedback it was written from, each ancestor's search-split score) and what the
writer searchers spent and dropped (their reporting notes).

Lineage lives in each prompt's searcher notes (``parents``: prompt keys; ``operator``;
``feedback``), so it is read from the store alone. A tree is cut at :data:`DEPTH` generations
and :data:`WIDTH` parents per node (OPRO's children name every prompt their meta-prompt showed);
what was cut is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptscout.ensemble.types import Ensemble
from promptscout.leaderboard import LeaderboardEntry, describe, format_value
from promptscout.prompts import Prompt
from promptscout.store import Store

DEPTH = 6
WIDTH = 3


@dataclass
class Node:
    """One prompt of a family tree.

    Attributes:
        key: Its prompt key; ``rank``: its leaderboard rank (None: not ranked).
        searcher, operator: Who proposed it, and how (``start`` for a starting prompt).
        text: The prompt in one line.
        score: Its search-split score (first objective), with the share scored when racing
            stopped it early.
        feedback: The words it was written from (a reflection's diagnosis), if any.
        parents: Its parents' nodes (at most :data:`WIDTH`); ``hidden``: parents not shown (past
            the width or the depth, or already shown elsewhere in the tree).
    """

    key: str
    rank: int | None
    searcher: str
    operator: str
    text: str
    score: str
    feedback: str = ""
    parents: list[Node] = field(default_factory=list)
    hidden: int = 0


def parents_of(prompt: Prompt) -> list[str]:
    """The parent keys a prompt's notes name (none for prompts no writer or operator made)."""
    parents = prompt.metadata.get("parents") or []
    return [str(p) for p in parents] if isinstance(parents, list) else []


def winner(entries: list[LeaderboardEntry]) -> tuple[LeaderboardEntry, Prompt] | None:
    """The best-ranked row whose prompt has parents (an ensemble: its best such member)."""
    for entry in entries:
        members = entry.prompt.members if isinstance(entry.prompt, Ensemble) else (entry.prompt,)
        for member in members:
            if parents_of(member):
                return entry, member
    return None


def family_tree(store: Store, prompt: Prompt, entries: list[LeaderboardEntry]) -> Node:
    """``prompt``'s family tree from the store."""
    stored = store.prompts()
    ranks = {e.prompt.key: e.rank for e in entries}
    objective = store.meta.objective_names[0]
    split, size = store.meta.search_split, len(store.meta.search_examples)
    drawn: set[str] = set()

    def score(key: str) -> str:
        evaluation = store.latest_evaluation(key, split)
        if evaluation is None or not evaluation.ok:
            return "not scored" if evaluation is None else "failed"
        text = format_value(evaluation.objectives, objective)
        scored = len(evaluation.example_ids)
        return text + (f" (stopped early: {scored} of {size})" if scored < size else "")

    def node(key: str, candidate: Prompt, searcher: str, depth: int) -> Node:
        drawn.add(key)
        notes = candidate.metadata
        found = Node(key, ranks.get(key), searcher, str(notes.get("operator", "")),
                     describe(candidate, width=300), score(key),
                     str(notes.get("feedback", "")))  # fmt: skip
        parents = parents_of(candidate)
        for parent in parents:
            if parent in stored and parent not in drawn and len(found.parents) < WIDTH and depth:
                found.parents.append(node(parent, *stored[parent], depth - 1))
        found.hidden = len(parents) - len(found.parents)
        return found

    searcher = stored[prompt.key][1] if prompt.key in stored else ""
    return node(prompt.key, stored.get(prompt.key, (prompt, ""))[0], searcher, DEPTH)


def writing_notes(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """Each writer's ``writing`` notes (proposer calls, tokens, seconds, proposals kept and
    dropped per reason), by searcher name, in campaign order."""
    found = []
    for spec in store.meta.config["searchers"]:
        name = (spec.get("options") or {}).get("name") or spec["type"]
        report = store.meta.searcher_report(name) or {}
        notes = (report.get("notes") or {}).get("writing") if isinstance(report, dict) else None
        if isinstance(notes, dict):
            found.append((name, notes))
    return found
