"""The finalists re-scored on the held-out split, within a time allowance when one is set.

``[leaderboard] rescore_minutes`` sizes the held-out sample to what the finalists' measured
speed buys in that time: each finalist's seconds per example come from its own scoring on the
search split (a fine-tuned adapter reading two demonstrations is slower than a zero-shot
prompt), and one held-out example costs their sum. The sample is a seeded random subset of the
held-out examples the campaign recorded at its start, chosen once, before anything is scored
there, and written back to the store so that the leaderboard, the ensembles and a resume all
read the same examples. It never goes below ``MIN_HOLDOUT`` examples: fewer would say little.
Re-scoring never decides the pick (selection does, before it): a smaller sample only widens the
held-out intervals.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from tqdm.auto import tqdm

from promptscout.evaluation.base import Evaluator
from promptscout.leaderboard import build_leaderboard
from promptscout.store import Store

MIN_HOLDOUT = 100
T = TypeVar("T")


def seeded_sample(items: Sequence[T], n: int, seed: Sequence[int]) -> list[T]:
    """``n`` of ``items`` drawn at random with ``seed``, in their original order (the held-out
    subset a campaign records at its start, and the re-scoring sample drawn from it)."""
    rng = np.random.default_rng(list(seed))
    return [items[i] for i in sorted(rng.choice(len(items), n, replace=False).tolist())]


def rescore_finalists(
    store: Store,
    evaluator: Callable[[], Evaluator],
    top_k: int,
    minutes: float | None,
    seed: int,
    progress: bool,
    log: Callable[[str], None],
    also: Sequence[str] = (),
) -> None:
    """Score the ``top_k`` candidates by the search split, and the candidates keyed ``also``
    (a committee's members), on the held-out split (those not scored there yet, on at most what
    ``minutes`` buy), storing each evaluation as it arrives."""
    meta = store.meta
    leaders = build_leaderboard(store, top=top_k, ensembles=False) if top_k > 0 else []
    keys = list(dict.fromkeys([*(e.prompt.key for e in leaders), *also]))
    holdout_ids = meta.holdout_examples
    todo = [k for k in keys if store.find_evaluation(k, meta.holdout_split, holdout_ids) is None]
    if not todo or not holdout_ids:
        return
    if minutes is not None:
        _fit_holdout(store, todo, minutes, seed, log)
    holdout_ids = meta.holdout_examples
    log(f"re-scoring {len(todo)} finalist(s) on {meta.holdout_split} ({len(holdout_ids)} "
        "held-out examples each)")  # fmt: skip
    score_missing(store, evaluator, todo, meta.holdout_split, holdout_ids, progress)


def score_missing(
    store: Store,
    evaluator: Callable[[], Evaluator],
    keys: Sequence[str],
    split: str,
    ids: Sequence[str],
    progress: bool,
) -> None:
    """Score the stored candidates ``keys`` that have no evaluation on exactly ``ids`` of
    ``split``, storing each evaluation as it arrives (with a progress bar)."""
    todo = [k for k in keys if store.find_evaluation(k, split, ids) is None]
    if not todo:
        return
    stored = store.prompts()
    prompts = [stored[k][0] for k in todo]
    with tqdm(
        total=len(prompts) * len(ids),
        unit="ex",
        desc=split,
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for evaluation in evaluator().iter_evaluate(prompts, split, ids, progress=bar.update):
            prompt, searcher = stored[evaluation.prompt_key]
            store.add_evaluation(prompt, searcher, evaluation)


def seconds_per_example(store: Store, keys: list[str]) -> dict[str, float]:
    """Each candidate's measured scoring time per example on the search split (candidates with
    no timed scoring there, e.g. all from the score cache, are left out)."""
    timed = store.scoring_time_by_prompt(store.meta.search_split)
    return {key: timed[key][0] / timed[key][1] for key in keys if key in timed}


def affordable(per_example: dict[str, float], keys: list[str], minutes: float) -> int | None:
    """Held-out examples the ``keys`` can all be scored on in ``minutes`` (at least
    ``MIN_HOLDOUT``); None when none of them was timed. An untimed key costs the median."""
    if not per_example:
        return None
    typical = statistics.median(per_example.values())
    return sample_size(sum(per_example.get(key, typical) for key in keys), minutes)


def sample_size(seconds_per_example: float, minutes: float) -> int:
    """Held-out examples ``minutes`` buy when each costs ``seconds_per_example`` (every
    finalist's scoring of it), at least ``MIN_HOLDOUT``."""
    return max(MIN_HOLDOUT, int(minutes * 60 / seconds_per_example))


def _fit_holdout(
    store: Store, keys: list[str], minutes: float, seed: int, log: Callable[[str], None]
) -> None:
    """Shrink the recorded held-out examples to what ``minutes`` buy, once: not after anything
    was scored there (a resumed re-scoring keeps the sample it started on)."""
    meta = store.meta
    recorded = meta.holdout_examples
    if store.count_prompts(meta.holdout_split):
        return
    n = affordable(seconds_per_example(store, keys), keys, minutes)
    if n is None or n >= len(recorded):
        return
    meta.holdout_examples = seeded_sample(recorded, n, [seed, 12])
    log(
        f"re-scoring budget: {n} of the {len(recorded)} held-out examples fit "
        f"[leaderboard] rescore_minutes = {minutes:g} at the finalists' measured speed"
    )
