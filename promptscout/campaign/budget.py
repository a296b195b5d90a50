"""The campaign budget: what the store says was spent against what the campaign file allows.

Every limit is read here: scored search-split examples (the unit that makes runs reproducible),
distinct candidates, dollars spent on a priced served model, and wall time summed over runs (a
safety cap: on a loaded machine it buys fewer examples).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from promptscout.config import BudgetConfig
from promptscout.store import Store


@dataclass(frozen=True)
class Allowance:
    """How many more candidates may be asked for (None: no limit), or why none."""

    candidates: int | None
    reason: str = ""

    @property
    def spent(self) -> bool:
        return bool(self.reason)


class Budget:
    """The budget of one run of a campaign.

    Args:
        config: The ``[budget]`` table.
        store: The campaign store (what was spent, including earlier runs).
        split: The search split (examples scored there count).
        split_size: Examples in the search split (a candidate may need all of them).
    """

    def __init__(self, config: BudgetConfig, store: Store, split: str, split_size: int) -> None:
        self.config = config
        self.store = store
        self.split = split
        self.split_size = split_size
        self.started = time.time()
        self.prior_seconds = store.seconds_spent()

    @property
    def examples_spent(self) -> int:
        return self.store.examples_scored(self.split)

    @property
    def dollars_spent(self) -> float | None:
        """What the campaign's model calls cost so far, at the ``[model]`` prices (None: not
        priced)."""
        return self.store.meta.dollars(*self.store.usage())

    @property
    def examples_total(self) -> int | None:
        """The example budget (the progress bar's total), or None."""
        return self.config.examples

    def allowance(self) -> Allowance:
        """How many more candidates the budget allows now."""
        minutes = self.config.minutes
        if minutes is not None and self.prior_seconds + time.time() - self.started >= minutes * 60:
            return Allowance(0, "time budget spent")
        allowed = None
        if self.config.examples is not None:
            # A candidate may need the whole split; racing usually stops it sooner.
            allowed = (self.config.examples - self.examples_spent) // self.split_size
            if allowed <= 0:
                return Allowance(0, "example budget spent")
        if self.config.dollars is not None:
            spent = self.dollars_spent
            if spent is not None and spent >= self.config.dollars:
                return Allowance(0, "dollar budget spent")
        if self.config.candidates is not None:
            left = self.config.candidates - self.store.count_prompts(self.split)
            if left <= 0:
                return Allowance(0, "candidate budget spent")
            allowed = left if allowed is None else min(allowed, left)
        return Allowance(allowed)


def ask_size(batch_size: int, parallelism: int, allowance: Allowance, nothing_to_race: bool) -> int:
    """How many prompts a turn asks for: the searcher's batch, and at least one per parallel
    worker so that each has work; the allowance caps it.

    While there is ``nothing_to_race`` against (racing is on but no candidate leads yet), a
    turn asks for one prompt: racing would stop none of a larger batch, so each of its
    candidates would be scored on the whole search split, and one searcher's first turn could
    spend a minutes budget before the others have a turn (a 14-class task's first 8 candidates
    took 9.5 of 10 minutes). One, not one per worker: the Ray evaluator spreads a prompt's
    examples over its actors anyway, and a campaign asks what it would ask on the local
    evaluator, so both end with the same leaderboard.
    """
    n = 1 if nothing_to_race else max(batch_size, parallelism)
    return n if allowance.candidates is None else min(n, allowance.candidates)
