"""Member weights fitted on the search split, and honest (cross-validated) scores for them.

The weighted ensemble is a log-linear pool ``softmax(sum_m w_m log p_m + b)``: one weight per
member (non-negative) and one bias per class. That is a multinomial logistic regression whose
features are the members' class log-probabilities, with the coefficients tied across classes, so
it has only ``members + classes`` parameters. The search split is small (32 examples on the
bundled sets), so the fit is regularised towards the plain geometric mean (``w_m = 1/M``,
``b = 0``) with an L2 penalty. The objective is convex, so projected gradient descent with a
backtracking line search finds its unique minimum, deterministically.

Dev scores of a fitted ensemble would be optimistic if the weights saw the examples they score,
so :func:`cross_validated` predicts each dev example with weights fitted on the other folds; the
leaderboard's dev column of a weighted ensemble is that, and its weights for the held-out split
are fitted on all of dev.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promptscout.ensemble.pooling import log_softmax, weighted

DEFAULT_L2 = 0.1
FOLDS = 4


def _loss_and_grad(
    members: np.ndarray, labels: np.ndarray, w: np.ndarray, b: np.ndarray, l2: float
) -> tuple[float, np.ndarray, np.ndarray]:
    m, n, _ = members.shape
    log_p = log_softmax(np.tensordot(w, members, axes=1) + b)
    w0 = 1.0 / m
    loss = -log_p[np.arange(n), labels].mean()
    loss += 0.5 * l2 * (np.sum((w - w0) ** 2) + np.sum(b**2))
    residual = np.exp(log_p)
    residual[np.arange(n), labels] -= 1.0  # d loss / d logits, per example
    grad_w = np.einsum("nc,mnc->m", residual, members) / n + l2 * (w - w0)
    grad_b = residual.mean(axis=0) + l2 * b
    return float(loss), grad_w, grad_b


def fit_weights(
    members: np.ndarray,
    labels: Sequence[int],
    l2: float = DEFAULT_L2,
    max_steps: int = 2000,
    tolerance: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit member weights and class biases maximising the penalised log-likelihood.

    Args:
        members: ``[members, n, classes]`` class log-probabilities on the fitting examples.
        labels: The gold class of each example.
        l2: Strength of the pull towards the geometric mean (``w = 1/M``, ``b = 0``).
        max_steps: Gradient steps at most.
        tolerance: Stop when a step improves the loss by less than this.

    Returns:
        ``(weights, bias)``: weights ``[members]`` (non-negative) and bias ``[classes]``.
    """
    y = np.asarray(labels, dtype=np.int64)
    m, _, c = members.shape
    w, b = np.full(m, 1.0 / m), np.zeros(c)
    loss, gw, gb = _loss_and_grad(members, y, w, b, l2)
    step = 1.0
    for _ in range(max_steps):
        while True:  # backtracking (Armijo) line search on the projected step
            new_w = np.maximum(w - step * gw, 0.0)
            new_b = b - step * gb
            new_loss, new_gw, new_gb = _loss_and_grad(members, y, new_w, new_b, l2)
            dw, db = new_w - w, new_b - b
            # The quadratic upper bound of a proximal-gradient step holds: accept the step.
            bound = loss + gw @ dw + gb @ db + 0.5 * (dw @ dw + db @ db) / step
            if new_loss <= bound or step < 1e-12:
                break
            step *= 0.5
        improved = loss - new_loss
        w, b, loss, gw, gb = new_w, new_b, new_loss, new_gw, new_gb
        step = min(step * 2.0, 64.0)
        if improved < tolerance:
            break
    return w, b


def cross_validated(
    members: np.ndarray, labels: Sequence[int], l2: float = DEFAULT_L2, folds: int = FOLDS
) -> np.ndarray:
    """Out-of-fold weighted-ensemble predictions ``[n, classes]``: example ``i`` (fold
    ``i % folds``) is predicted with weights fitted on the other folds."""
    y = np.asarray(labels, dtype=np.int64)
    n = members.shape[1]
    folds = max(2, min(folds, n))
    fold = np.arange(n) % folds
    out = np.empty(members.shape[1:])
    for k in range(folds):
        held = fold == k
        w, b = fit_weights(members[:, ~held], y[~held], l2)
        out[held] = weighted(members[:, held], w, b)
    return out
