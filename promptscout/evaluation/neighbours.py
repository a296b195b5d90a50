"""Nearest-neighbour demonstrations: for each input, the training examples most like it.

A prompt with ``nearest_demos = k`` shows each input its ``k`` most similar training examples
as demonstrations (KATE, Liu et al. 2022), the most similar last, next to the input. Similarity
is the model's own: an example's input text (its fields, one per line) is embedded as the mean
of the model's final hidden states over its tokens (:meth:`LanguageModel.embed`); embeddings are
centred on the training examples' mean (a language model's hidden states share one large common
direction that would make every pair look alike) and compared by cosine. Ties go to the earlier
training example.

A training example is never its own demonstration: scored as an input (selection validates on
the training split; batch calibration and the learned verbalizer read it), it is shown its
nearest *other* training examples, so the training split stays honest evidence.

Nothing here is fitted on labels: the demonstrations' labels are shown, as fixed demonstrations'
are, and the choice of neighbours reads only texts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from promptscout.tasks import Example, Task

Embed = Callable[[list[str]], np.ndarray]
"""Texts -> float ``[len(texts), hidden]`` embeddings (e.g. the model's, through the score
cache)."""


def input_text(example: Example) -> str:
    """What an example is embedded by: its input fields' values, one per line."""
    return "\n".join(str(v) for v in example.fields.values())


class Neighbours:
    """Finds each input's nearest training examples, embedding every text once.

    Args:
        task: The task whose training examples are the candidates.
        embed: How texts are embedded (called with the texts not embedded yet).
    """

    def __init__(self, task: Task, embed: Embed) -> None:
        self.task = task
        self._embed = embed
        self._vectors: dict[str, np.ndarray] = {}  # input text -> unit vector (centred)
        self._train: np.ndarray | None = None
        self._centre: np.ndarray | None = None

    def demos(self, examples: Sequence[Example], k: int) -> list[list[Example]]:
        """For each example, its ``k`` nearest training examples (never itself), the most
        similar last; fewer when the training split is smaller."""
        train = list(self.task.train)
        if not train or k <= 0:
            return [[] for _ in examples]
        matrix = self._train_matrix()
        queries = self._unit([input_text(e) for e in examples])
        similarity = queries @ matrix.T
        position = {e.id: i for i, e in enumerate(train)}
        out = []
        for row, example in zip(similarity, examples, strict=True):
            row = row.copy()
            if example.id in position:
                row[position[example.id]] = -np.inf
            # Stable sort on the negated similarity: ties keep the training order.
            order = np.argsort(-row, kind="stable")[: min(k, len(train) - (example.id in position))]
            out.append([train[int(i)] for i in order[::-1]])
        return out

    def _train_matrix(self) -> np.ndarray:
        if self._train is None:
            raw = self._raw([input_text(e) for e in self.task.train])
            self._centre = raw.mean(axis=0)
            self._train = _normalise(raw - self._centre)
        return self._train

    def _unit(self, texts: list[str]) -> np.ndarray:
        """Centred unit vectors of ``texts`` (embedding the new ones in one call)."""
        self._train_matrix()
        assert self._centre is not None
        new = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if new:
            for text, vector in zip(new, _normalise(self._raw(new) - self._centre), strict=True):
                self._vectors[text] = vector
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 0))

    def _raw(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._embed(texts), dtype=np.float64).reshape(len(texts), -1)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
