"""Prompt tuning's training: Adam on the soft tensors, and the nearest-token projection (the
starting vectors are :mod:`promptscout.searchers.virtual_tokens`).

Training differentiates the class-normalised cross-entropy of the gold label words (the
``cross_entropy`` objective) with respect to the soft tensors only, through the model's
soft-input forward pass (:func:`promptscout.model.soft_input.label_log_probs`); the model's
weights get no gradients. Everything crosses this module's boundary as plain NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from promptscout.model.soft_input import causal_model, final_norm, label_log_probs, soft_parameters
from promptscout.soft_tensors import FINAL_NORM, PREFIX


def nearest_tokens(model: Any, prefix: np.ndarray) -> tuple[list[int], str]:
    """The vocabulary token closest (cosine) to each vector, and their decoded text: a readable
    (and scorable) discrete projection of the soft prompt."""
    model = causal_model(model)
    weights = model.input_embeddings().detach().float()
    vectors = torch.from_numpy(np.asarray(prefix, np.float32)).to(weights.device)
    sims = (
        torch.nn.functional.normalize(vectors, dim=-1)
        @ torch.nn.functional.normalize(weights, dim=-1).T
    )
    ids = [int(i) for i in sims.argmax(dim=-1).cpu()]
    return ids, model.tokenizer.decode(ids)


def final_norm_weights(model: Any) -> np.ndarray:
    """The model's final norm weights (the start of parametric training), float32 ``[hidden]``."""
    _, weight = final_norm(causal_model(model))
    return weight.detach().float().cpu().numpy().copy()


class SoftTrainer:
    """Adam on the soft tensors, one epoch at a time, all state in plain NumPy.

    Args:
        model: a causal LM (frozen: only the soft tensors move).
        texts: rendered training texts (the prompt's discrete part filled with each example).
        labels: gold class index of each text.
        label_words: one word per class.
        lr: Adam step size.
        l2: weight of the squared distance of each trained tensor from its starting value
            (per vector, averaged), which keeps the vectors near the embeddings they started
            from and the final norm near the model's.
        batch: texts per optimiser step.
    """

    def __init__(
        self,
        model: Any,
        texts: Sequence[str],
        labels: Sequence[int],
        label_words: Sequence[str],
        *,
        lr: float,
        l2: float,
        batch: int,
    ) -> None:
        self.model = causal_model(model)
        self.texts, self.labels = list(texts), list(labels)
        self.words = list(label_words)
        self.lr, self.l2, self.batch = lr, l2, batch

    def loss(self, params: Mapping[str, torch.Tensor], indices: Sequence[int]) -> torch.Tensor:
        """Mean class-normalised cross-entropy of the gold label words on ``indices``."""
        texts = [self.texts[i] for i in indices]
        rows, picks = self.model._label_rows(texts, self.words, reserve=params[PREFIX].shape[0])
        scores = label_log_probs(
            self.model,
            rows,
            picks,
            (len(texts), len(self.words)),
            params[PREFIX],
            params.get(FINAL_NORM),
        )
        gold = torch.tensor([self.labels[i] for i in indices], device=scores.device)
        return torch.nn.functional.cross_entropy(scores, gold)

    def epoch(
        self,
        tensors: Mapping[str, np.ndarray],
        anchor: Mapping[str, np.ndarray],
        adam: dict[str, Any],
        order: Sequence[int],
    ) -> tuple[dict[str, np.ndarray], dict[str, Any], float]:
        """One pass over the texts in ``order``, ``batch`` at a time.

        Args:
            tensors: the current soft tensors (all of them are trained).
            anchor: their starting values, for the L2 term.
            adam: ``{"step": int, "m": {name: array}, "v": {name: array}}`` (empty dicts at first).
            order: text indices in the order to visit them.

        Returns:
            (new tensors, new Adam state, mean training loss over the epoch's steps).
        """
        b1, b2, eps = 0.9, 0.999, 1e-8
        dev = self.model.device
        current = soft_parameters(self.model, tensors)
        params = {k: t.clone().requires_grad_(True) for k, t in current.items()}

        def load(source: Mapping[str, np.ndarray], k: str) -> torch.Tensor:
            value = source.get(k)
            value = np.zeros_like(tensors[k]) if value is None else value
            return torch.tensor(np.asarray(value, np.float32), device=dev)

        start = {k: load(anchor, k) for k in params}
        m = {k: load(adam.get("m", {}), k) for k in params}
        v = {k: load(adam.get("v", {}), k) for k in params}
        step, losses = int(adam.get("step", 0)), []
        for s in range(0, len(order), self.batch):
            indices = list(order[s : s + self.batch])
            with torch.enable_grad():
                loss = self.loss(params, indices)
                penalty = sum(((p - start[k]) ** 2).sum(dim=-1).mean() for k, p in params.items())
                total = loss + self.l2 * penalty
                grads = torch.autograd.grad(total, list(params.values()))
            losses.append(float(loss.detach()))
            step += 1
            with torch.no_grad():
                for (k, p), g in zip(params.items(), grads, strict=True):
                    m[k].mul_(b1).add_(g, alpha=1 - b1)
                    v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
                    m_hat = m[k] / (1 - b1**step)
                    v_hat = v[k] / (1 - b2**step)
                    p.sub_(self.lr * m_hat / (v_hat.sqrt() + eps))
        new = {k: p.detach().cpu().numpy().copy() for k, p in params.items()}
        state = {
            "step": step,
            "m": {k: t.cpu().numpy().copy() for k, t in m.items()},
            "v": {k: t.cpu().numpy().copy() for k, t in v.items()},
        }
        return new, state, float(np.mean(losses)) if losses else float("nan")

    def mean_loss(self, tensors: Mapping[str, np.ndarray]) -> float:
        """The training loss of ``tensors`` on all texts (no update)."""
        params = soft_parameters(self.model, tensors)
        with torch.inference_mode():
            return float(self.loss(params, range(len(self.texts))))
