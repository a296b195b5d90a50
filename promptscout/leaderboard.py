"""The leaderboard: every candidate of every searcher, ranked on the search split, with held-out
scores and 95% intervals for the finalists, the ensemble rows, and the export format.

It reads only the store, so it needs neither the model nor plug-in code. The campaign's end
(:func:`promptscout.ensemble.finalize.finalize_ensembles`) leaves two meta entries it reads:
``intervals`` (the finalists' test intervals; without it, accuracy gets a Wilson interval computed
here) and ``ensembles`` (the ensemble rows, with their members, weights and values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from promptscout.ensemble.types import Ensemble
from promptscout.evaluation.base import Evaluation
from promptscout.objectives.intervals import wilson_interval
from promptscout.prompts import Prompt
from promptscout.sections import SERVER_OPTIONS, TaskConfig
from promptscout.store import Store

EXPORT_FORMAT = "promptscout-export/1"


@dataclass
class LeaderboardEntry:
    """One ranked row.

    Attributes:
        rank: 1 is best.
        searcher: The searcher that first proposed the prompt (``"ensemble"`` for ensembles,
            ``"<searcher> committee"`` for a searcher's committee of trained members).
        kind: ``"prompt"`` or ``"ensemble"``.
        prompt: The prompt, or the ensemble (members, method, fitted weights).
        dev: Objective values on the whole search split, or None. A weighted ensemble's are
            cross-validated (see :mod:`promptscout.ensemble.weights`).
        test: Objective values on the whole held-out split, or None when not re-scored.
        score: The ranking score on the ranked split.
        test_interval: 95% confidence intervals of the test values, ``{name: [low, high]}``.
        prompt_tokens: Length of the prompt's own text in tokens (an ensemble's members' sum).
        examples: Examples scored for it over all splits (an ensemble's members' sum): its cost.
        dollars: What scoring it cost at the ``[model]`` prices (an ensemble's members' sum);
            None when the model is not priced.
        selection: The evidence selection ranked it by, for the candidates it compared
            (:mod:`promptscout.campaign.selection`): its score over the search split and its
            validation examples, and how many of each; None for the others.
    """

    rank: int
    searcher: str
    kind: str
    prompt: Prompt | Ensemble
    dev: dict[str, float] | None
    test: dict[str, float] | None
    score: float
    test_interval: dict[str, list[float]] | None = None
    prompt_tokens: int | None = None
    examples: int = 0
    selection: dict[str, Any] | None = None
    dollars: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "searcher": self.searcher,
            "kind": self.kind,
            "key": self.prompt.key,
            "parents": list(self.prompt.metadata.get("parents") or [])
            if isinstance(self.prompt, Prompt)
            else [],
            "prompt": self.prompt.to_dict(),
            "dev": self.dev,
            "test": self.test,
            "test_interval": self.test_interval,
            "prompt_tokens": self.prompt_tokens,
            "examples": self.examples,
            "dollars": self.dollars,
            "selection": self.selection,
        }


def _full_split(store: Store, ids: tuple[str, ...], split: str) -> dict[str, Evaluation]:
    """Every prompt's evaluation without error on all of a split (latest wins)."""
    if not ids:
        return {}
    return {
        stored.evaluation.prompt_key: stored.evaluation
        for stored in store.evaluations(split, ids)
        if stored.evaluation.ok
    }


def _test_interval(
    stored: dict[str, Any], key: str, test: dict[str, float] | None, n: int
) -> dict[str, list[float]] | None:
    """The finalist's stored intervals, or a Wilson interval of its accuracy."""
    if key in stored:
        return stored[key].get("test")
    if test and "accuracy" in test:
        return {"accuracy": list(wilson_interval(test["accuracy"], n))}
    return None


def build_leaderboard(
    store: Store,
    *,
    split: str = "dev",
    top: int | None = None,
    ensembles: bool = True,
    selection: bool = True,
) -> list[LeaderboardEntry]:
    """Rank every prompt (and ensemble) in ``store``.

    Args:
        store: A campaign store.
        split: ``"dev"`` ranks by the search split (all candidates); ``"test"`` ranks the
            candidates that were re-scored on the held-out split by that score.
        top: Keep the best ``top`` rows.
        ensembles: Include the ensemble rows the campaign's end stored.
        selection: On the search split, put the campaign's pick first and the rest of the
            selection pool next, in selection order (:mod:`promptscout.campaign.selection`);
            False ranks by the search split alone.
    """
    meta = store.meta
    ranking = meta.ranking
    dev = _full_split(store, meta.search_examples, meta.search_split)
    test = _full_split(store, meta.holdout_examples, meta.holdout_split)
    n_test = len(meta.holdout_examples)
    intervals = meta.intervals
    costs = store.examples_by_prompt()
    usage = store.usage_by_prompt()

    def dollars(*keys: str) -> float | None:
        return meta.dollars(*(sum(usage.get(k, (0, 0))[i] for k in keys) for i in (0, 1)))

    ranked_by = dev if split == "dev" else test
    rows = []
    for key, (prompt, searcher) in store.prompts().items():
        if key not in ranked_by:
            continue
        test_values = test[key].objectives if key in test else None
        rows.append(
            LeaderboardEntry(
                0,
                searcher,
                "prompt",
                prompt,
                dev[key].objectives if key in dev else None,
                test_values,
                ranking.score(ranked_by[key].objectives),
                _test_interval(intervals, key, test_values, n_test),
                (dev.get(key) or test[key]).prompt_tokens,
                costs.get(key, 0),
                dollars=dollars(key),
            )
        )
    for record in meta.ensembles if ensembles else []:
        values = record["dev"] if split == "dev" else record["test"]
        if values is None:
            continue
        ensemble = Ensemble.from_dict(record["ensemble"])
        rows.append(
            LeaderboardEntry(
                0,
                f"{record['committee']} committee" if record.get("committee") else "ensemble",
                "ensemble",
                ensemble,
                record["dev"],
                record["test"],
                ranking.score(values),
                record.get("test_interval"),
                record.get("prompt_tokens"),
                sum(costs.get(p.key, 0) for p in ensemble.members),
                dollars=dollars(*(p.key for p in ensemble.members)),
            )
        )
    # Ties: the earlier prompt (store order) keeps the better rank, so ranks are reproducible.
    rows.sort(key=lambda e: -e.score if math.isfinite(e.score) else math.inf)
    if split == "dev" and selection:
        rows = _in_selection_order(rows, meta.selection, meta.pick)
    for i, row in enumerate(rows, start=1):
        row.rank = i
    return rows[:top] if top else rows


def _in_selection_order(
    rows: list[LeaderboardEntry], records: list[dict[str, Any]], pick: str | None
) -> list[LeaderboardEntry]:
    """The pick first (an ensemble when it won), then the selection pool in selection order,
    then every other row as ranked by the search split; each selected row gets its evidence."""
    order = {r["key"]: i for i, r in enumerate(records)}
    if pick is not None:
        order = {pick: -1, **order}
    for row in rows:
        if row.kind == "prompt" and row.prompt.key in order:
            row.selection = next(r for r in records if r["key"] == row.prompt.key)
    chosen = sorted((r for r in rows if r.prompt.key in order), key=lambda r: order[r.prompt.key])
    return chosen + [r for r in rows if r.prompt.key not in order]


def format_table(entries: list[LeaderboardEntry], objectives: list[str]) -> str:
    """A plain-text table for terminals."""
    head = (
        ["rank", "searcher"]
        + [f"dev {o}" for o in objectives]
        + [f"test {o} [95% CI]" for o in objectives]
        + ["tokens", "examples", "prompt"]
    )
    lines = []
    for e in entries:
        cells = [str(e.rank), e.searcher]
        cells += [format_value(e.dev, o) for o in objectives]
        cells += [format_value(e.test, o, e.test_interval) for o in objectives]
        cells += ["-" if e.prompt_tokens is None else str(e.prompt_tokens), str(e.examples)]
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


def format_value(
    values: dict[str, float] | None,
    name: str,
    intervals: dict[str, list[float]] | None = None,
) -> str:
    """``0.8089 [0.790, 0.826]``: a value with its interval when known, ``-`` when missing."""
    if values is None or name not in values:
        return "-"
    text = f"{values[name]:.4f}"
    if intervals and name in intervals:
        low, high = intervals[name]
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def describe(prompt: Prompt | Ensemble, width: int = 90) -> str:
    """One line showing a prompt (template with visible newlines, label words, extras) or an
    ensemble (method, weights, then its members)."""
    if isinstance(prompt, Ensemble):
        text = prompt.name
        if prompt.weights:
            text += " w=" + "/".join(f"{w:.2f}" for w in prompt.weights)
        text += ": " + " + ".join(describe(m, width=10**6) for m in prompt.members)
        return text if len(text) <= width else text[: width - 3] + "..."
    # A committee whose members each read their own template shows all of them.
    templates = prompt.metadata.get("member_templates") or [prompt.template]
    text = " / ".join(t.replace("\n", "\\n") for t in templates)
    if prompt.instruction:
        text = prompt.instruction.replace("\n", "\\n") + " | " + text
    if prompt.soft and prompt.metadata.get("method"):  # a PEFT adapter: its method
        members = prompt.metadata.get("cross_fit")
        committee = f" committee of {members}" if members else ""
        text = f"<{prompt.metadata['method']}{committee} {prompt.soft[:8]}> " + text
    elif prompt.soft:  # learned vectors before the text: say how many, and which tensors
        vectors = prompt.metadata.get("vectors")
        text = f"<soft {vectors or '?'} vec {prompt.soft[:8]}> " + text
    text += f"  [{'/'.join(prompt.label_words)}]"
    if prompt.demos:
        text += f" +{len(prompt.demos)} demos"
    if prompt.nearest_demos:
        text += f" +{prompt.nearest_demos} nearest demos"
    return text if len(text) <= width else text[: width - 3] + "..."


def export_payload(store: Store, entries: list[LeaderboardEntry]) -> dict[str, Any]:
    """The export document: enough to re-score every prompt with ``promptscout evaluate``."""
    meta = store.meta
    config = meta.config
    return {
        "format": EXPORT_FORMAT,
        "campaign": config["name"],
        "model": {
            "name": config["model"]["name"],
            "fingerprint": meta.fingerprint,
            **{k: config["model"][k] for k in SERVER_OPTIONS if config["model"].get(k)},
        },
        "task": {
            "spec": TaskConfig.from_stored(config["task"]).source,
            "split_seed": config["task"]["split_seed"],
            "table": config["task"],  # the campaign's [task]: evaluate loads the same task
        },
        "ranking": meta.ranking.to_dict(),
        "entries": [e.to_dict() for e in entries],
    }
