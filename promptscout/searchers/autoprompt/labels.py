"""Label-word search by a linear probe (Shin et al. 2020, section 2.2).

A logistic-regression probe learns to tell the classes apart from the hidden state at the
position that predicts the label word. The output head turns that hidden state into a token's
logit by a dot product with the token's output embedding, so feeding an output embedding to the
probe says which class the token stands for: the best label word of a class is the token the
probe puts furthest into that class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def train_probe(
    features: np.ndarray, labels: Sequence[int], classes: int, *, l2: float = 1e-2, steps: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic-regression probe, fitted by full-batch gradient descent.

    Args:
        features: ``[examples, hidden]``.
        labels: class index per example.
        classes: number of classes.
        l2: weight decay on the weights (few examples, many dimensions).
        steps: gradient steps (the loss is convex; the result is deterministic).

    Returns:
        ``(weights [classes, hidden], bias [classes])`` for the raw features.
    """
    x = np.asarray(features, dtype=np.float64)
    # One scale for all dimensions keeps the step size sensible whatever the model's hidden scale.
    scale = float(np.sqrt((x**2).sum(axis=1).mean())) or 1.0
    x = x / scale
    y = np.zeros((len(x), classes))
    y[np.arange(len(x)), np.asarray(labels)] = 1.0
    w = np.zeros((classes, x.shape[1]))
    b = np.zeros(classes)
    rate = 1.0
    for _ in range(steps):
        z = x @ w.T + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        err = (p - y) / len(x)
        w -= rate * (err.T @ x + l2 * w)
        b -= rate * err.sum(axis=0)
    return w / scale, b


def class_margins(weights: np.ndarray, bias: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """``[tokens, classes]``: how far the probe puts each token's output embedding into each
    class (its logit minus the largest other class's logit)."""
    z = embeddings @ weights.T + bias
    margins = np.empty_like(z)
    for c in range(z.shape[1]):
        others = np.delete(z, c, axis=1)
        margins[:, c] = z[:, c] - (others.max(axis=1) if others.size else 0.0)
    return margins


def pick_label_words(
    margins: np.ndarray,
    allowed: np.ndarray,
    word_of: Callable[[int], str | None],
    candidates: int,
) -> list[str] | None:
    """One label word per class: the allowed token with the largest margin for the class whose
    ``word_of`` (its word, or None when it is no usable label word) is new.

    Args:
        margins: from :func:`class_margins`.
        allowed: boolean mask over tokens.
        word_of: the label word a token stands for, or None.
        candidates: tokens tried per class, best first.

    Returns:
        The words in class order, or None when some class has no usable token among its
        ``candidates`` best.
    """
    words: list[str] = []
    for c in range(margins.shape[1]):
        score = np.where(allowed, margins[:, c], -np.inf)
        order = np.argsort(-score, kind="stable")[:candidates]
        chosen = None
        for token in order:
            if not np.isfinite(score[token]):
                break
            word = word_of(int(token))
            if word is not None and word not in words:
                chosen = word
                break
        if chosen is None:
            return None
        words.append(chosen)
    return words
