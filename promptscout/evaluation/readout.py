"""Readouts: how a prompt's raw label-word scores become its class scores.

A prompt reads its label words' log-probabilities as class scores unless it names a readout
(both are part of the prompt, so searchers can try them per candidate and the leaderboard ranks
them like any other prompt part):

``calibration`` (the class prior the prompt itself imposes is removed, Zhao et al. 2021):

- ``"contextual"``: subtract the log of the mean class distribution on content-free inputs
  (``N/A``, empty, ``[MASK]``) rendered with the prompt (its instruction and demonstrations);
- ``"domain"``: subtract the class log-probabilities after the prompt with an empty input, the
  prompt's own frame as the domain premise (domain-conditional PMI, Holtzman et al. 2021);
- ``"batch"``: subtract the mean class log-distribution over the training inputs rendered with
  the prompt (batch calibration, Zhou et al. 2024; the training labels are never read).

``verbalizer = "linear"`` (a learned, parametric verbalizer): class scores are
``a * s + W h + b``, where ``s`` are the label words' class log-probabilities and ``h`` the
standardised final hidden state where the label word is predicted. ``W`` starts at zero with an
L2 penalty whose weight is chosen by 4-fold cross-validation on the training examples (large
penalties leave calibrated label words, small ones a linear probe), then the head is fitted on
all of them. Everything is deterministic given the scores, so a prompt's readout is the same
wherever and whenever it is scored.

The references (content-free inputs or training examples) are scored with the prompt like any
example; their outputs come from the score cache after the first time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptscout.prompts import Prompt
from promptscout.tasks import Example, Task

PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0)  # the L2 weights cross-validation chooses from
FOLDS = 4
_HEADS: OrderedDict[tuple[str, bytes], dict[str, np.ndarray]] = OrderedDict()  # fitted heads


def reference_examples(task: Task, prompt: Prompt) -> tuple[Example, ...]:
    """The examples a prompt's readout needs scored besides the evaluated ones."""
    if prompt.verbalizer or prompt.calibration == "batch":
        return tuple(task.train)
    if prompt.calibration == "contextual":
        return task.content_free()
    if prompt.calibration == "domain":
        return tuple(e for e in task.content_free() if not any(e.fields.values()))
    return ()


def needs_hidden(prompt: Prompt) -> bool:
    """Whether raw outputs hold hidden states after the class scores."""
    return bool(prompt.verbalizer)


def _log_normalize(scores: np.ndarray) -> np.ndarray:
    return scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)


def apply(task: Task, prompt: Prompt, raw: np.ndarray, examples: Sequence[Example]) -> np.ndarray:
    """Class scores ``[len(examples), classes]`` of the evaluated examples.

    Args:
        task: The task (the training labels for a learned verbalizer).
        prompt: The prompt, naming its readout.
        raw: One row per evaluated example, then one per :func:`reference_examples` entry: the
            label words' log-probabilities, followed by the hidden state when
            :func:`needs_hidden`.
        examples: The evaluated examples. A training example is never scored by a head fitted
            on it: those get out-of-fold predictions (the head of the other folds), so the
            training split stays honest evidence for the campaign's selection.
    """
    raw = np.asarray(raw, dtype=np.float64)
    n, classes = len(examples), len(prompt.label_words)
    scores, refs = raw[:n, :classes], raw[n:, :classes]
    if prompt.verbalizer:
        hidden, ref_hidden = raw[:n, classes:], raw[n:, classes:]
        labels = np.array([int(e.label) for e in task.train])
        out = linear_scores(_head(prompt.key, refs, ref_hidden, labels), scores, hidden)
        fold_of = _train_folds(task)
        for fold in sorted({fold_of[e.id] for e in examples if e.id in fold_of}):
            keep = np.array([fold_of[e.id] != fold for e in task.train])
            head = _head(prompt.key, refs[keep], ref_hidden[keep], labels[keep])
            rows = [i for i, e in enumerate(examples) if fold_of.get(e.id) == fold]
            out[rows] = linear_scores(head, scores[rows], hidden[rows])
        return out
    if prompt.calibration == "contextual":  # the mean class distribution, in probability space
        prior = np.log(np.exp(_log_normalize(refs)).mean(axis=0))
        return _log_normalize(scores) - prior
    if prompt.calibration in ("domain", "batch"):
        return _log_normalize(scores) - _log_normalize(refs).mean(axis=0)
    return scores


def _train_folds(task: Task) -> dict[str, int]:
    """Each training example's fold (of :data:`FOLDS`, seeded) for out-of-fold predictions."""
    order = np.random.default_rng(1).permutation(len(task.train))
    return {task.train[int(i)].id: k for k, part in enumerate(np.array_split(order, FOLDS))
            for i in part}  # fmt: skip


def linear_scores(
    head: dict[str, np.ndarray], scores: np.ndarray, hidden: np.ndarray
) -> np.ndarray:
    """``a * s + W h + b`` of a fitted head (see :func:`fit_linear_head`), as log-probabilities."""
    standard = (hidden - head["mean"]) / head["scale"]
    logits = head["a"] * _log_normalize(scores) + standard @ head["W"] + head["b"]
    return _log_normalize(logits)


def _head(key: str, scores: np.ndarray, hidden: np.ndarray, labels: np.ndarray) -> dict:
    """The fitted head of a prompt, fitted once per process for the same reference outputs."""
    cache_key = (key, np.ascontiguousarray(scores).tobytes() + hidden.tobytes())
    if cache_key not in _HEADS:
        _HEADS[cache_key] = fit_linear_head(scores, hidden, labels)
        if len(_HEADS) > 256:
            _HEADS.popitem(last=False)
    return _HEADS[cache_key]


def fit_linear_head(
    scores: np.ndarray, hidden: np.ndarray, labels: np.ndarray, penalty: float | None = None
) -> dict[str, np.ndarray]:
    """Fit ``a * s + W h + b`` by L-BFGS on the cross-entropy plus ``penalty * |W|^2``.

    Args:
        scores: Label-word log-probabilities ``[n, classes]`` of the training examples.
        hidden: Their hidden states ``[n, hidden]``.
        labels: Their classes.
        penalty: The L2 weight; None chooses it from :data:`PENALTIES` by :data:`FOLDS`-fold
            cross-validated log-likelihood (folds drawn with a fixed seed).

    Returns:
        ``{"a", "W", "b", "mean", "scale", "penalty"}`` as float64 arrays.
    """
    classes = scores.shape[1]
    if penalty is None:
        penalty = _cross_validated_penalty(scores, hidden, labels, classes)
    mean, scale = hidden.mean(axis=0), hidden.std(axis=0) + 1e-6
    a, w, b = _lbfgs(_log_normalize(scores), (hidden - mean) / scale, labels, classes, penalty)
    return {"a": a, "W": w, "b": b, "mean": mean, "scale": scale, "penalty": np.array(penalty)}


def _cross_validated_penalty(
    scores: np.ndarray, hidden: np.ndarray, labels: np.ndarray, classes: int
) -> float:
    order = np.random.default_rng(0).permutation(len(labels))
    folds = [f for f in np.array_split(order, min(FOLDS, len(labels))) if len(f)]
    best: tuple[float, float] | None = None
    for penalty in PENALTIES:
        loss = 0.0
        for k, held in enumerate(folds):
            fit = np.concatenate([f for j, f in enumerate(folds) if j != k])
            head = fit_linear_head(scores[fit], hidden[fit], labels[fit], penalty)
            logp = linear_scores(head, scores[held], hidden[held])
            loss -= float(logp[np.arange(len(held)), labels[held]].sum())
        if best is None or loss < best[0] - 1e-9:
            best = (loss, penalty)
    assert best is not None
    return best[1]


def _lbfgs(
    scores: np.ndarray, hidden: np.ndarray, labels: np.ndarray, classes: int, penalty: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    s = torch.tensor(scores, dtype=torch.float64)
    h = torch.tensor(hidden, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.long)
    a = torch.ones(1, dtype=torch.float64, requires_grad=True)
    w = torch.zeros(h.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([a, w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Any:
        optimizer.zero_grad()
        logits = a * s + h @ w + b
        loss = torch.nn.functional.cross_entropy(logits, y) + penalty * (w**2).sum()
        loss = loss + 1e-4 * (b**2).sum()  # keeps the bias finite for a class never seen
        loss.backward()
        return loss

    optimizer.step(closure)
    return a.detach().numpy(), w.detach().numpy(), b.detach().numpy()
