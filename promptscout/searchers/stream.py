"""A resumable stream of training examples for searchers that learn from train batches."""

from __future__ import annotations

from typing import Any

import numpy as np


class ExampleStream:
    """Indices ``0 .. size-1`` drawn in order from successive random permutations, so every
    batch reads examples the previous ones did not, until the split comes round again.

    The permutations come from the searcher's own generator (passed to :meth:`draw`), so the
    searcher's other draws and this stream stay one reproducible sequence; :attr:`order` and
    :attr:`cursor` are plain data for the searcher's saved state.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.order: list[int] = []
        self.cursor = 0

    def draw(self, m: int, rng: np.random.Generator, *, distinct: bool = False) -> list[int]:
        """The next ``min(m, size)`` indices.

        Args:
            m: How many to draw.
            rng: Shuffles the next permutation when the current one is used up.
            distinct: Skip an index the batch already holds (across a reshuffle one can come
                round again); otherwise a batch that straddles two permutations may repeat one.
        """
        m = min(m, self.size)
        out: list[int] = []
        while len(out) < m:
            if self.cursor >= len(self.order):
                self.order = [int(i) for i in rng.permutation(self.size)]
                self.cursor = 0
            if distinct:
                index = self.order[self.cursor]
                self.cursor += 1
                if index not in out:
                    out.append(index)
            else:
                take = min(m - len(out), len(self.order) - self.cursor)
                out += self.order[self.cursor : self.cursor + take]
                self.cursor += take
        return out

    def load(self, order: list[int], cursor: int) -> None:
        """Restore the permutation in use and the position in it (from a saved state)."""
        self.order = [int(i) for i in order]
        self.cursor = int(cursor)


class BalancedStream:
    """Batches with the same number of examples of every class, each class read from its own
    :class:`ExampleStream` (so a reward compares prompts on balanced batches: on an unbalanced
    one, a prompt that always answers the majority class earns a reward it did not learn).

    Args:
        labels: The class index of every example of the split, in split order.
    """

    def __init__(self, labels: list[int]) -> None:
        self._members: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            self._members.setdefault(int(label), []).append(index)
        self._classes = sorted(self._members)
        self._streams = {c: ExampleStream(len(self._members[c])) for c in self._classes}

    def draw(self, m: int, rng: np.random.Generator) -> list[int]:
        """``max(1, m // classes)`` distinct examples of each class (split indices), class by
        class; fewer of a class that has fewer."""
        per = max(1, m // max(1, len(self._classes)))
        out: list[int] = []
        for c in self._classes:
            members = self._members[c]
            out += [members[i] for i in self._streams[c].draw(per, rng, distinct=True)]
        return out

    def state(self) -> list[list[Any]]:
        """``[order, cursor]`` of every class's stream, in class order (plain data)."""
        return [[self._streams[c].order, self._streams[c].cursor] for c in self._classes]

    def load(self, state: list[list[Any]]) -> None:
        """Restore what :meth:`state` returned."""
        for c, (order, cursor) in zip(self._classes, state, strict=True):
            self._streams[c].load(order, cursor)
