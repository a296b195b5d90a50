"""Soft prompts on a causal LM: scoring with learned vectors before the text, and training them.

One scored sequence reads ``[BOS if the tokenizer adds one] [n soft vectors] [text] [label word
tokens but the last]``: the vectors are spliced into the input embeddings, everything else is the
ordinary row :meth:`CausalLM.score_labels` builds. In parametric mode the final norm's weights are
replaced too (:func:`torch.func.functional_call`; the shared model is never modified).

These passes run the model's own forward on ``inputs_embeds`` (the shared-prefix engine works on
token ids and is bypassed): right-padded batches of similar length, the output head only at the
positions that predict a label token. Training differentiates the class-normalised cross-entropy
of the gold label words (the ``cross_entropy`` objective) with respect to the soft tensors only;
the model's weights get no gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from promptscout.errors import PromptscoutError
from promptscout.soft import FINAL_NORM, INIT_MODES, PREFIX, check_tensors

if TYPE_CHECKING:
    from promptscout.model.causal import CausalLM

# Token ids sampled by "vocab" initialisation: BPE vocabularies list merges by frequency, so the
# first ids are common words rather than rare fragments.
_COMMON_IDS = 5000


def _causal(model: Any) -> CausalLM:
    from promptscout.model.causal import CausalLM

    if not isinstance(model, CausalLM):
        raise PromptscoutError(
            f"soft prompts need a causal LM; model '{model.name}' is {model.kind}"
        )
    return model


def hidden_size(model: Any) -> int:
    """Width of the model's input embeddings (a soft vector's length)."""
    return int(_causal(model).input_embeddings().shape[1])


def final_norm_weights(model: Any) -> np.ndarray:
    """The model's final norm weights (the start of parametric training), float32 ``[hidden]``."""
    _, weight = _final_norm(_causal(model))
    return weight.detach().float().cpu().numpy().copy()


def _final_norm(model: CausalLM) -> tuple[str, torch.Tensor]:
    """(parameter name in the module :func:`_body_forward` runs, weight) of the final norm."""
    body = model.hf_model.get_decoder()
    norm = getattr(body, "norm", None)
    weight = getattr(norm, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 1:
        raise PromptscoutError(
            f"parametric mode 'final_norm' needs a decoder with a final norm (`model.norm`); "
            f"model '{model.name}' has none"
        )
    module = model._body if model._body is not None else model.hf_model
    name = next((n for n, p in module.named_parameters() if p is weight), None)
    if name is None:
        raise PromptscoutError(f"cannot locate the final norm of model '{model.name}'")
    return name, weight


# -- the forward pass -----------------------------------------------------------------------


def _label_log_probs(
    model: CausalLM,
    rows: Sequence[list[int]],
    picks: Sequence[list[tuple[int, int, int, int]]],
    shape: tuple[int, int],
    prefix: torch.Tensor,
    norm: torch.Tensor | None,
) -> torch.Tensor:
    """Summed log-probabilities ``[texts, classes]`` (float32, differentiable in ``prefix`` and
    ``norm``) of the picked tokens of id rows read with ``prefix`` spliced in after the BOS."""
    dev, n, lead = model.device, prefix.shape[0], len(model.prefix_ids)
    embed = model.hf_model.get_input_embeddings()
    override = None
    if norm is not None:
        name, weight = _final_norm(model)
        override = {name: norm.to(weight.dtype)}  # trained in float32, run in the model's dtype
    out = torch.zeros(shape, dtype=torch.float32, device=dev)
    for batch in model._batches([len(r) for r in rows]):
        lengths = [len(rows[r]) for r in batch]
        width = max(lengths)
        ids = torch.full((len(batch), width), model.pad_id, dtype=torch.long)
        for b, r in enumerate(batch):
            ids[b, : lengths[b]] = torch.tensor(rows[r], dtype=torch.long)
        tokens = embed(ids.to(dev))
        vectors = prefix.to(tokens.dtype).unsqueeze(0).expand(len(batch), -1, -1)
        embeds = torch.cat([tokens[:, :lead], vectors, tokens[:, lead:]], dim=1)
        mask = (torch.arange(width + n) < torch.tensor(lengths).unsqueeze(1) + n).long().to(dev)
        # Picks predict text or label tokens, which all come after the vectors: shift by n.
        where, tok, ti, ci = [], [], [], []
        slots: dict[tuple[int, int], int] = {}
        for b, r in enumerate(batch):
            for pos, token, i, c in picks[r]:
                where.append(slots.setdefault((b, pos + n), len(slots)))
                tok.append(token)
                ti.append(i)
                ci.append(c)
        at = torch.tensor(list(slots), dtype=torch.long, device=dev).reshape(-1, 2)
        logits = _forward(model, embeds, mask, at, override)
        logp = torch.log_softmax(logits.float(), dim=-1)
        values = logp[torch.tensor(where, device=dev), torch.tensor(tok, device=dev)]
        index = (torch.tensor(ti, device=dev), torch.tensor(ci, device=dev))
        out = out.index_put(index, values, accumulate=True)
        real = [length + n for length in lengths]
        model.tokens_forwarded += sum(real)
        model.tokens_computed += sum(real)
        model.flops += model._flops([0] * len(real), real, len(slots))
    return out


def _forward(
    model: CausalLM,
    embeds: torch.Tensor,
    mask: torch.Tensor,
    at: torch.Tensor,
    override: dict[str, torch.Tensor] | None,
) -> torch.Tensor:
    """Logits at the ``(row, position)`` pairs ``at`` (body, then the head only there)."""
    module = model._body if model._body is not None else model.hf_model
    kwargs = {"inputs_embeds": embeds, "attention_mask": mask, "use_cache": False}
    if override:
        result = torch.func.functional_call(module, override, args=(), kwargs=kwargs)
    else:
        result = module(**kwargs)
    if model._body is None:
        return result.logits[at[:, 0], at[:, 1]]
    return model._head(result[0][at[:, 0], at[:, 1]])


def _as_torch(model: CausalLM, tensors: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    width = hidden_size(model)
    clean = check_tensors(tensors)
    if clean[PREFIX].shape[1] != width:
        raise PromptscoutError(
            f"soft prompt vectors have width {clean[PREFIX].shape[1]}, but model "
            f"'{model.name}' has hidden size {width}; they were trained on another model"
        )
    return {k: torch.from_numpy(v).to(model.device) for k, v in clean.items()}


def score_soft(
    model: Any, texts: Sequence[str], label_words: Sequence[str], soft: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Class log-probabilities ``[len(texts), len(label_words)]`` (float64) with a soft prompt;
    see :meth:`~promptscout.model.base.LanguageModel.score_labels_soft`."""
    model = _causal(model)
    params = _as_torch(model, soft)
    texts, words = list(texts), list(label_words)
    rows, picks = model._label_rows(texts, words, reserve=params[PREFIX].shape[0])
    if not rows:
        return np.zeros((len(texts), len(words)))
    with torch.inference_mode():
        out = _label_log_probs(
            model, rows, picks, (len(texts), len(words)), params[PREFIX], params.get(FINAL_NORM)
        )
    return out.double().cpu().numpy()


# -- initialisation and reading ---------------------------------------------------------------


def init_prefix(model: Any, n: int, mode: str, text: str, seed: int) -> np.ndarray:
    """``n`` starting vectors, float32 ``[n, hidden]``.

    Args:
        model: a causal LM.
        n: number of vectors.
        mode: ``"text"`` (the embeddings of ``text``'s first ``n`` tokens, the rest sampled as
            ``"vocab"``), ``"vocab"`` (embeddings of common tokens drawn at random) or
            ``"random"`` (normal with the embedding matrix's own standard deviation).
        text: the initialisation text for ``"text"``.
        seed: the random seed.
    """
    model = _causal(model)
    if mode not in INIT_MODES:
        raise PromptscoutError(f"soft init must be one of {', '.join(INIT_MODES)}, got {mode!r}")
    weights = model.input_embeddings().detach().float().cpu()
    rng = np.random.default_rng(seed)
    if mode == "random":
        std = float(weights.std())
        return rng.normal(0.0, std, size=(n, weights.shape[1])).astype(np.float32)
    ids = model.tokenize(text)[:n] if mode == "text" else []
    common = min(_COMMON_IDS, weights.shape[0])
    ids += [int(i) for i in rng.integers(0, common, size=n - len(ids))]
    return weights[torch.tensor(ids, dtype=torch.long)].numpy().copy()


def nearest_tokens(model: Any, prefix: np.ndarray) -> tuple[list[int], str]:
    """The vocabulary token closest (cosine) to each vector, and their decoded text: a readable
    (and scorable) discrete projection of the soft prompt."""
    model = _causal(model)
    weights = model.input_embeddings().detach().float()
    vectors = torch.from_numpy(np.asarray(prefix, np.float32)).to(weights.device)
    sims = (
        torch.nn.functional.normalize(vectors, dim=-1)
        @ torch.nn.functional.normalize(weights, dim=-1).T
    )
    ids = [int(i) for i in sims.argmax(dim=-1).cpu()]
    return ids, model.tokenizer.decode(ids)


# -- training -------------------------------------------------------------------------------


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
        self.model = _causal(model)
        self.texts, self.labels = list(texts), list(labels)
        self.words = list(label_words)
        self.lr, self.l2, self.batch = lr, l2, batch

    def loss(self, params: Mapping[str, torch.Tensor], indices: Sequence[int]) -> torch.Tensor:
        """Mean class-normalised cross-entropy of the gold label words on ``indices``."""
        texts = [self.texts[i] for i in indices]
        rows, picks = self.model._label_rows(texts, self.words, reserve=params[PREFIX].shape[0])
        scores = _label_log_probs(
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
        current = _as_torch(self.model, tensors)
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
        params = _as_torch(self.model, tensors)
        with torch.inference_mode():
            return float(self.loss(params, range(len(self.texts))))
