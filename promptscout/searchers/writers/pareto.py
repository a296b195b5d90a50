"""GEPA's candidate pool: the prompts that are best on at least one example of the search split,
less those another pool member dominates.

``wins`` maps a prompt key to the search examples it answered right (scored on all of the split).
An example's best prompts are those that won it; the pool is every prompt best somewhere, less
one whose wins are a subset of another's (the first in order kept between equals). A parent is
drawn with probability proportional to the examples it wins, so that a prompt alone in winning
some examples keeps a chance however few they are.

Example:
    >>> front({"a": {"1", "2"}, "b": {"2"}, "c": {"3"}})
    {'a': 2, 'c': 1}
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def front(wins: Mapping[str, set[str]]) -> dict[str, int]:
    """The non-dominated prompts that win at least one example, with how many they win."""
    keys = [k for k, won in wins.items() if won]
    kept = {}
    for i, key in enumerate(keys):
        dominated = any(
            (wins[key] < wins[other]) or (wins[key] == wins[other] and j < i)
            for j, other in enumerate(keys)
            if other != key
        )
        if not dominated:
            kept[key] = len(wins[key])
    return kept


def draw(pool: Mapping[str, int], rng: np.random.Generator) -> str:
    """One key of ``pool``, with probability proportional to its wins."""
    keys = sorted(pool)
    weights = np.array([pool[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def complementary(wins: Mapping[str, set[str]], pool: Mapping[str, int]) -> tuple[str, str] | None:
    """The two pool members that each win the most examples the other loses (None: no two
    members that both win something the other does not)."""
    best, pair = 0, None
    keys = sorted(pool)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            only_a, only_b = len(wins[a] - wins[b]), len(wins[b] - wins[a])
            if min(only_a, only_b) > 0 and only_a + only_b > best:
                best, pair = only_a + only_b, (a, b)
    return pair
