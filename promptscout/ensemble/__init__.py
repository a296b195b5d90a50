"""Prompt ensembles: several prompts' predictions pooled into one.

The members' per-example class log-probabilities (:attr:`Evaluation.outputs`) are pooled by

- ``average``: the mean of the class distributions;
- ``vote``: majority vote, ties broken by the averaged probabilities;
- ``weighted``: a log-linear pool with member weights and class biases fitted on dev
  (:mod:`promptscout.ensemble.weights`);

optionally after contextual calibration of each member (:mod:`promptscout.ensemble.calibration`).
Pooling needs no model: an ensemble costs its members' scoring. The campaign's end
(:mod:`promptscout.ensemble.finalize`) stores ensemble rows for the leaderboard.

Example:
    >>> import numpy as np
    >>> from promptscout.prompts import Prompt
    >>> a, b = Prompt("{text} It was", ("bad", "good")), Prompt("Review: {text}", ("bad", "good"))
    >>> ensemble = Ensemble("average", (a, b))
    >>> outputs = [np.log([[0.2, 0.6]]), np.log([[0.3, 0.1]])]  # label-word log-probabilities
    >>> np.exp(ensemble.combine(outputs)).round(3).tolist()
    [[0.5, 0.5]]
"""

from promptscout.ensemble.calibration import calibrate, content_free_prior
from promptscout.ensemble.pooling import average, class_log_probs, vote, weighted
from promptscout.ensemble.types import METHODS, Ensemble, pool_inputs
from promptscout.ensemble.weights import cross_validated, fit_weights

__all__ = [
    "METHODS",
    "Ensemble",
    "average",
    "calibrate",
    "class_log_probs",
    "content_free_prior",
    "cross_validated",
    "fit_weights",
    "pool_inputs",
    "vote",
    "weighted",
]
