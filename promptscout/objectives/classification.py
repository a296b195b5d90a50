"""Classification metrics over label-word log-probabilities."""

from __future__ import annotations

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
