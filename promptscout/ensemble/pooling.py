"""Pooling rules: how the members' class log-probabilities become one prediction.

Every function takes member outputs as ``[members, n, classes]`` class log-probabilities
(normalised over the classes, see :func:`class_log_probs`) and returns ``[n, classes]`` class
log-probabilities, so the ensemble's outputs go through the same objectives as a prompt's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z`` minus its log-sum-exp over the last axis."""
    top = z.max(axis=-1, keepdims=True)
    return z - (top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True)))


def class_log_probs(outputs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Stack members' label-word log-probabilities (normalised over the vocabulary) and
    renormalise them over the classes: ``[members, n, classes]``."""
    stacked = np.asarray(outputs, dtype=np.float64)
    if stacked.ndim != 3:
        raise ValueError(f"expected [members, n, classes] outputs, got shape {stacked.shape}")
    return log_softmax(stacked)


def average(members: np.ndarray) -> np.ndarray:
    """The mean of the members' class distributions (a linear pool)."""
    top = members.max(axis=0)
    return top + np.log(np.exp(members - top).mean(axis=0))


def vote(members: np.ndarray) -> np.ndarray:
    """Majority vote of the members' predicted classes.

    The output is ``log((votes + mean probability) / (members + 1))``: a distribution whose argmax
    is the majority class, with ties broken by the averaged probabilities (a vote margin of one
    always outweighs a probability difference, which is below one), and a finite cross-entropy.
    """
    m, n, c = members.shape
    votes = np.zeros((n, c))
    np.add.at(votes, (np.arange(n)[None, :].repeat(m, 0), members.argmax(axis=2)), 1.0)
    return np.log((votes + np.exp(average(members))) / (m + 1))


def weighted(members: np.ndarray, weights: Sequence[float], bias: Sequence[float]) -> np.ndarray:
    """A log-linear pool: ``softmax(sum_m w_m log p_m + b)`` (weights from :mod:`.weights`)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (members.shape[0],):
        raise ValueError(f"{len(w)} weights for {members.shape[0]} members")
    b = np.asarray(bias, dtype=np.float64) if len(bias) else np.zeros(members.shape[2])
    return log_softmax(np.tensordot(w, members, axes=1) + b)
