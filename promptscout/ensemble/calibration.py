"""Contextual calibration (Zhao et al. 2021, "Calibrate Before Use").

A prompt (its wording, its label words, its demonstrations and their order) biases the model
towards some classes. The bias shows on inputs that carry no content: the prompt filled with
"N/A", "" or "[MASK]" should be undecided, and whatever it prefers there is the prompt's own
label prior. Calibration divides it out: ``p(c | x) / p_cf(c)``, renormalised, where ``p_cf`` is
the mean class distribution over the content-free inputs.

The content-free outputs come from the evaluator like any other: the task's pseudo-split
``"content-free"`` (:data:`promptscout.tasks.CONTENT_FREE_SPLIT`) holds one example per
content-free input, so a prompt is rendered and scored on it with its demonstrations, through the
same model, batching and score cache as the real examples. It costs three examples per prompt.
"""

from __future__ import annotations

import numpy as np

from promptscout.ensemble.pooling import log_softmax


def content_free_prior(content_free: np.ndarray) -> np.ndarray:
    """A prompt's label prior: log of the mean class distribution of its content-free outputs
    (``[k, classes]`` label-word log-probabilities)."""
    probs = np.exp(log_softmax(np.asarray(content_free, dtype=np.float64))).mean(axis=0)
    return np.log(probs / probs.sum())


def calibrate(class_log_probs: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Class log-probabilities ``[n, classes]`` with the prompt's label prior divided out."""
    return log_softmax(class_log_probs - content_free_prior(content_free))
