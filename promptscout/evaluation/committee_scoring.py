"""Scoring a cross-fitted committee of adapters (:mod:`promptscout.adapter_committee`).

Each example is scored by the members that never trained on it: a search example by the
member whose fold held it out (so the committee's search-split score is out of fold, as honest
as any prompt's), any other example (held-out data, training examples) by every member. The
members' label-word scores are renormalised over the classes and their class probabilities
averaged, as the ``average`` ensemble pools prompts.

The local evaluator has every member score every text, the examples only one member's output
is kept for included: the scoring time the campaign measures on the search split is then what a
held-out example costs, which is what the re-scoring allowance plans with
(:mod:`promptscout.campaign.rescore`); and each member's outputs are cached under its own digest,
by text, as any adapter's are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pool_committee(
    scores: Sequence[np.ndarray], held_out: Sequence[Sequence[str]], example_ids: Sequence[str]
) -> np.ndarray:
    """Class log-probabilities ``[len(example_ids), classes]`` of a committee.

    Args:
        scores: Each member's label-word log-probabilities ``[len(example_ids), classes]``.
        held_out: Each member's held-out example ids.
        example_ids: The example each row renders.
    """
    held = [set(ids) for ids in held_out]
    normalised = [s - np.logaddexp.reduce(s, axis=1, keepdims=True) for s in scores]
    out = np.empty_like(normalised[0])
    for i, example_id in enumerate(example_ids):
        scorers = [j for j, ids in enumerate(held) if example_id in ids] or range(len(scores))
        rows = np.stack([normalised[j][i] for j in scorers])
        out[i] = np.logaddexp.reduce(rows, axis=0) - np.log(len(rows))
    return out
