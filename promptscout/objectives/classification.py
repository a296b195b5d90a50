"""Classification metrics over label-word log-probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promptscout.objectives.base import ObjectiveInput


def accuracy(data: ObjectiveInput) -> float:
    """Share of examples whose gold class alone has the highest label-word log-probability."""
    return float((data.predictions == data.labels).mean())


def macro_f1(data: ObjectiveInput) -> float:
    """Unweighted mean of per-class F1 over all of the task's classes (absent classes score 0)."""
    predictions, labels = data.predictions, data.labels
    scores = []
    for c in range(data.task.num_classes):
        tp = np.sum((predictions == c) & (labels == c))
        predicted, actual = np.sum(predictions == c), np.sum(labels == c)
        scores.append(0.0 if tp == 0 else 2 * tp / (predicted + actual))
    return float(np.mean(scores))


def cross_entropy(data: ObjectiveInput) -> float:
    """Mean negative log-likelihood of the gold class, ``-1/n sum log P(y = t | X, P)``.

    Probabilities are renormalised over the classes' label words, so the loss is comparable across
    label-word choices; the mean (not the sum) keeps it comparable across example counts.
    """
    log_probs = data.class_log_probs
    return float(-log_probs[np.arange(len(log_probs)), data.labels].mean())


def gold_cross_entropy(scores: np.ndarray, gold: Sequence[int]) -> np.ndarray:
    """Each row's cross-entropy of its gold class, the label scores renormalised over the
    classes (per example, as early stopping, selection and the template choice read it)."""
    logp = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
    return -logp[np.arange(len(gold)), list(gold)]
