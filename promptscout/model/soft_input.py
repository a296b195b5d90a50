"""Soft-prompt input for a causal LM: scoring with learned vectors spliced before the text.

One scored sequence reads ``[BOS if the tokenizer adds one] [n soft vectors] [text] [label word
tokens but the last]``: the vectors are spliced into the input embeddings, everything else is the
ordinary row :meth:`CausalLM.score_labels <promptscout.model.causal.CausalLM.score_labels>`
builds. In parametric mode the final norm's weights are replaced too
(:func:`torch.func.functional_call`; the shared model is never modified).

These passes run the model's own forward on ``inputs_embeds`` (the shared-prefix engine works on
token ids and is bypassed): right-padded batches of similar length, the output head only at the
positions that predict a label token. :func:`label_log_probs` stays differentiable in the soft
tensors, so prompt tuning (:mod:`promptscout.searchers.prompt_tuning`) trains through it; the
tensors themselves, as plain data, are :mod:`promptscout.soft_tensors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from promptscout.errors import PromptscoutError
from promptscout.model.hf import HFLanguageModel
from promptscout.soft_tensors import FINAL_NORM, PREFIX, check_tensors


def causal_model(model: Any) -> Any:
    """``model`` itself, if it is a Hugging Face causal LM (the backend that reads soft prompts).

    Raises:
        PromptscoutError: it is not.
    """
    if not isinstance(model, HFLanguageModel) or model.kind != "causal":
        raise PromptscoutError(
            f"soft prompts need a causal LM; model '{model.name}' is {model.kind}"
        )
    return model


def hidden_size(model: Any) -> int:
    """Width of the model's input embeddings (a soft vector's length)."""
    return int(causal_model(model).input_embeddings().shape[1])


def final_norm(model: Any) -> tuple[str, torch.Tensor]:
    """(parameter name in the module :func:`_forward` runs, weight) of a causal LM's final norm.

    Raises:
        PromptscoutError: the decoder has no final norm (``model.norm``) to replace.
    """
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


def label_log_probs(
    model: Any,
    rows: Sequence[list[int]],
    picks: Sequence[list[tuple[int, int, int, int]]],
    shape: tuple[int, int],
    prefix: torch.Tensor,
    norm: torch.Tensor | None,
    *,
    before_bos: bool = False,
) -> torch.Tensor:
    """Summed log-probabilities ``[texts, classes]`` (float32, differentiable in ``prefix`` and
    ``norm``) of the picked tokens of id rows read with ``prefix`` spliced in after the BOS
    (before it with ``before_bos``: where PEFT's prompt tuning puts its virtual tokens)."""
    dev, n = model.device, prefix.shape[0]
    lead = 0 if before_bos else len(model.prefix_ids)
    embed = model.hf_model.get_input_embeddings()
    override = None
    if norm is not None:
        name, weight = final_norm(model)
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
    model: Any,
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


def soft_parameters(model: Any, tensors: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Checked soft tensors as torch tensors on the model's device.

    Raises:
        PromptscoutError: the tensors are malformed, or their width is not the model's.
    """
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
    model = causal_model(model)
    params = soft_parameters(model, soft)
    return score_vectors(model, texts, label_words, params[PREFIX], params.get(FINAL_NORM))


def score_vectors(
    model: Any,
    texts: Sequence[str],
    label_words: Sequence[str],
    prefix: torch.Tensor,
    norm: torch.Tensor | None = None,
    *,
    before_bos: bool = False,
) -> np.ndarray:
    """Class log-probabilities (float64, no gradients) of texts read with the vectors ``prefix``
    spliced in (checked tensors, :func:`soft_parameters`); see :func:`label_log_probs`."""
    texts, words = list(texts), list(label_words)
    rows, picks = model._label_rows(texts, words, reserve=prefix.shape[0])
    if not rows:
        return np.zeros((len(texts), len(words)))
    with torch.inference_mode():
        out = label_log_probs(
            model, rows, picks, (len(texts), len(words)), prefix, norm, before_bos=before_bos
        )
    return out.double().cpu().numpy()
