"""White-box pieces of gradient-guided prompt search (AutoPrompt, Shin et al. 2020).

The campaign scores a trigger prompt as *text*, so everything here starts from rendered texts:
each text is tokenised exactly as :meth:`~promptscout.model.LanguageModel.score_labels` tokenises
it, and each trigger is found in those ids by its character span. A trigger whose span is not
exactly one token with the intended id (its text merged with a neighbour, or decodes to text that
tokenises differently) is reported as not intact: the prompt the campaign would score is not the
one the gradient was taken for.

The label loss is computed on the Hugging Face model fed ``inputs_embeds``, in which the trigger
positions hold one leaf tensor per slot, so a backward pass gives ``d loss / d trigger embedding``
summed over every row that uses it. Label words are placed and teacher-forced as in
``score_labels`` (causal: after the text, a multi-token word read token by token; masked: one mask
per token at ``[P]`` or the end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.model.base import LanguageModel
from promptscout.model.hf import HFLanguageModel
from promptscout.prompts import LABEL_SLOT as MASK_MARKER  # the masked backend's mask marker

if TYPE_CHECKING:  # torch loads with a model; the searchers import this module for LOSSES
    import torch

LOSSES = ("label", "class")
"""``label``: minus the log-probability of the gold label word over the whole vocabulary (the
paper's loss); ``class``: minus its log-probability normalised over the classes' label words
(cross-entropy of the classifier the prompt defines)."""

Span = tuple[int, int]


@dataclass
class LabelRows:
    """Token rows of rendered prompts with their triggers located, ready for a label loss.

    Attributes:
        rows: token id sequences exactly as the model scores them (special tokens included; for
            causal multi-token label words, the text followed by the word's tokens but its last).
        triggers: for each row, the position of each trigger slot in it, in slot order.
        picks: for each row, ``(position, token, text, class)``: add ``log P(token)`` read at
            ``position`` to the score of ``(text, class)`` (``text`` indexes :attr:`kept`).
        kept: indices (into the texts given) of the texts whose triggers are all intact; the
            others have no rows.
        classes: the number of classes.
    """

    rows: list[list[int]] = field(default_factory=list)
    triggers: list[list[int]] = field(default_factory=list)
    picks: list[list[tuple[int, int, int, int]]] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    classes: int = 0


def _hf(model: LanguageModel) -> HFLanguageModel:
    if not isinstance(model, HFLanguageModel):
        raise PromptscoutError(
            f"model '{model.name}' gives no gradients; gradient searchers need a Hugging Face "
            "causal or masked LM"
        )
    if not getattr(model.tokenizer, "is_fast", False):
        raise PromptscoutError(
            f"model '{model.name}' has a slow tokenizer without character offsets; gradient "
            "searchers need a fast (Rust) tokenizer"
        )
    return model


def _encode(model: HFLanguageModel, text: str) -> tuple[list[int], list[Span]]:
    enc = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _find(
    text: str, ids: list[int], offsets: list[Span], spans: Sequence[Span], tokens: Sequence[int]
) -> list[int] | None:
    """The token index of each trigger span, or None when one is not exactly its own token.

    The token may start earlier than the span over whitespace only: byte-level BPE tokenizers
    attach a space to the word after it, and the frame's space before a slot is the trigger's.
    """
    found = []
    for (start, end), token in zip(spans, tokens, strict=True):
        hits = [j for j, (a, b) in enumerate(offsets) if a < end and b > start]
        if len(hits) != 1:
            return None
        j = hits[0]
        a, b = offsets[j]
        if ids[j] != token or b != end or a > start:
            return None
        if a < start and not text[a:start].isspace():
            return None
        found.append(j)
    return found


def _locate(
    model: HFLanguageModel, text: str, spans: Sequence[Span], tokens: Sequence[int]
) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """``(left ids, right ids, left trigger indices, right trigger indices)`` of a text.

    Causal texts are all "left". Masked texts split at ``[P]`` and each side is tokenised on its
    own, as :class:`~promptscout.model.masked.MaskedLM` does; a trigger in the right side gets
    its index there.
    """
    if model.kind == "masked" and MASK_MARKER in text:
        cut = text.index(MASK_MARKER)
        left, right = text[:cut], text[cut + len(MASK_MARKER) :]
    else:
        cut, left, right = len(text), text, ""
    sides = [(left, 0, [], []), (right, cut + len(MASK_MARKER), [], [])]
    for span, token in zip(spans, tokens, strict=True):
        side = sides[0] if span[1] <= cut else sides[1]
        side[2].append((span[0] - side[1], span[1] - side[1]))
        side[3].append(token)
    out: list[list[int]] = []
    for part, _, part_spans, part_tokens in sides:
        ids, offsets = _encode(model, part) if part else ([], [])
        where = _find(part, ids, offsets, part_spans, part_tokens)
        if where is None:
            return None
        out += [ids, where]
    return out[0], out[2], out[1], out[3]


def triggers_intact(
    model: LanguageModel,
    texts: Sequence[str],
    spans: Sequence[Sequence[Span]],
    tokens: Sequence[int],
) -> list[bool]:
    """Whether each text tokenises with every trigger span as exactly its intended token.

    Args:
        model: a Hugging Face model.
        texts: rendered prompts.
        spans: for each text, the ``(start, end)`` character span of each trigger slot.
        tokens: the intended token id of each slot.
    """
    hf = _hf(model)
    return [_locate(hf, t, s, tokens) is not None for t, s in zip(texts, spans, strict=True)]


def label_rows(
    model: LanguageModel,
    texts: Sequence[str],
    spans: Sequence[Sequence[Span]],
    tokens: Sequence[int],
    label_words: Sequence[str],
) -> LabelRows:
    """Token rows for scoring ``label_words`` after each text, with the triggers located.

    Texts whose triggers are not intact (see :func:`triggers_intact`), or that do not fit the
    model's context, are left out.
    """
    hf = _hf(model)
    out = LabelRows(classes=len(label_words))
    for i, (text, text_spans) in enumerate(zip(texts, spans, strict=True)):
        located = _locate(hf, text, text_spans, tokens)
        if located is None:
            continue
        left, right, at_left, at_right = located
        n, prefix = len(out.kept), len(hf.prefix_ids)
        rows: list[tuple[list[int], list[int], list[tuple[int, int, int, int]]]] = []
        if hf.kind == "causal":
            base = hf.prefix_ids + left
            where = [prefix + j for j in at_left]
            words = [hf._word_ids(text, w) for w in label_words]
            single = [(c, ids[0]) for c, ids in enumerate(words) if len(ids) == 1]
            if single:
                rows.append((base, where, [(len(base) - 1, tok, n, c) for c, tok in single]))
            for c, ids in enumerate(words):
                if len(ids) > 1:
                    picks = [(len(base) - 1 + j, t, n, c) for j, t in enumerate(ids)]
                    rows.append((base + ids[:-1], where, picks))
        else:
            by_length: dict[int, list[tuple[int, list[int]]]] = {}
            for c, w in enumerate(label_words):
                ids = hf._word_ids(text.partition(MASK_MARKER)[0], w)
                by_length.setdefault(len(ids), []).append((c, ids))
            first = prefix + len(left)
            for masks, group in by_length.items():
                row = hf.prefix_ids + left + [hf.mask_id] * masks + right + hf.suffix_ids
                where = [prefix + j for j in at_left] + [first + masks + j for j in at_right]
                picks = [(first + j, t, n, c) for c, ids in group for j, t in enumerate(ids)]
                rows.append((row, where, picks))
        if any(len(row) > hf.max_length for row, _, _ in rows):
            continue  # the model would cut it: the triggers' positions would not hold
        out.kept.append(i)
        for row, where, picks in rows:
            out.rows.append(row)
            out.triggers.append(where)
            out.picks.append(picks)
    return out


def _label_scores(
    model: HFLanguageModel, rows: LabelRows, batch: Sequence[int], triggers: torch.Tensor
) -> tuple[torch.Tensor, list[int]]:
    """Summed label log-probabilities ``[texts, classes]`` of the rows ``batch`` (which must hold
    every row of their texts), with the trigger slots' input embeddings taken from
    ``triggers`` (``[slots, hidden]``); also the texts (indices into :attr:`LabelRows.kept`)."""
    import torch

    dev = model.device
    width = max(len(rows.rows[r]) for r in batch)
    ids = torch.full((len(batch), width), model.pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for b, r in enumerate(batch):
        ids[b, : len(rows.rows[r])] = torch.tensor(rows.rows[r])
        mask[b, : len(rows.rows[r])] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    with torch.no_grad():
        embeds = model.input_embeddings()[ids]
    at = [(b, pos, s) for b, r in enumerate(batch) for s, pos in enumerate(rows.triggers[r])]
    b_idx, p_idx, s_idx = (
        torch.tensor(x, dtype=torch.long, device=dev) for x in zip(*at, strict=True)
    )
    # Out of place, so the trigger rows of `embeds` are functions of the leaf `triggers`.
    embeds = embeds.index_put((b_idx, p_idx), triggers[s_idx].to(embeds.dtype))
    slots: dict[tuple[int, int], int] = {}
    sel, tok, text, cls = [], [], [], []
    for b, r in enumerate(batch):
        for pos, token, t, c in rows.picks[r]:
            sel.append(slots.setdefault((b, pos), len(slots)))
            tok.append(token)
            text.append(t)
            cls.append(c)
    where = torch.tensor(list(slots), dtype=torch.long, device=dev)
    body, head = getattr(model, "_body", None), getattr(model, "_head", None)
    if body is not None and head is not None:
        kwargs: dict[str, Any] = {"inputs_embeds": embeds, "attention_mask": mask}
        if model.kind == "causal":
            kwargs["use_cache"] = False
        hidden = body(**kwargs)[0]
        logits = head(hidden[where[:, 0], where[:, 1]])
    else:
        out = model.hf_model(inputs_embeds=embeds, attention_mask=mask)
        logits = out.logits[where[:, 0], where[:, 1]]
    logp = torch.log_softmax(logits.float(), dim=-1)
    values = logp[torch.tensor(sel, device=dev), torch.tensor(tok, device=dev)]
    texts = sorted(set(text))
    local = {t: k for k, t in enumerate(texts)}
    scores = torch.zeros((len(texts), rows.classes), dtype=torch.float32, device=dev)
    index = torch.tensor([local[t] for t in text], device=dev)
    scores = scores.index_put((index, torch.tensor(cls, device=dev)), values, accumulate=True)
    return scores, texts


def _loss(scores: torch.Tensor, gold: torch.Tensor, loss: str) -> torch.Tensor:
    """Summed (not averaged) loss of ``[texts, classes]`` label scores."""
    import torch

    if loss == "class":
        scores = torch.log_softmax(scores, dim=-1)
    return -scores.gather(1, gold.unsqueeze(1)).sum()


def trigger_gradient(
    model: LanguageModel,
    rows: LabelRows,
    gold: Sequence[int],
    tokens: Sequence[int],
    *,
    loss: str = "label",
    batch: int = 16,
    embeddings: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """The mean label loss over the texts of ``rows`` and its gradient w.r.t. each trigger
    slot's input embedding.

    Args:
        model: a Hugging Face model.
        rows: from :func:`label_rows`.
        gold: the gold class of every text given to :func:`label_rows` (kept or not).
        tokens: the trigger token ids (one per slot).
        loss: one of :data:`LOSSES`.
        batch: texts per forward/backward pass; gradients of the passes are summed, so the
            result does not depend on it.
        embeddings: ``[slots, hidden]`` trigger embeddings to use instead of the tokens' own
            (e.g. for a finite-difference check).

    Returns:
        ``(mean loss, gradient [slots, hidden])``, both in float64 and of the *mean* loss.
    """
    import torch

    hf = _hf(model)
    if loss not in LOSSES:
        raise PromptscoutError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if not rows.kept:
        raise PromptscoutError("no text keeps its trigger tokens intact; nothing to learn from")
    weights = hf.input_embeddings()
    if embeddings is None:
        start = weights.detach()[torch.tensor(list(tokens), device=hf.device)].float()
    else:
        start = torch.as_tensor(embeddings, dtype=torch.float32, device=hf.device)
    leaf = start.clone().requires_grad_(True)
    by_text: dict[int, list[int]] = {}
    for r, picks in enumerate(rows.picks):
        by_text.setdefault(picks[0][2], []).append(r)
    texts = sorted(by_text)
    total, grad = 0.0, torch.zeros_like(leaf)
    for k in range(0, len(texts), max(1, batch)):
        part = [r for t in texts[k : k + batch] for r in by_text[t]]
        with torch.enable_grad():
            scores, which = _label_scores(hf, rows, part, leaf)
            target = torch.tensor([gold[rows.kept[t]] for t in which], device=hf.device)
            value = _loss(scores, target, loss)
            (g,) = torch.autograd.grad(value, leaf)
        total += float(value.detach())
        grad += g
    n = len(texts)
    return total / n, (grad / n).double().cpu().numpy()


def hotflip_scores(model: LanguageModel, gradient: np.ndarray) -> np.ndarray:
    """``-(E @ g)`` for every vocabulary token: the first-order decrease of the loss when a
    trigger slot whose gradient is ``g`` takes that token (up to a constant of the slot)."""
    import torch

    weights = _hf(model).input_embeddings().detach()
    g = torch.as_tensor(gradient, dtype=weights.dtype, device=weights.device)
    with torch.inference_mode():
        return (-(weights @ g)).float().cpu().numpy()


def token_texts(model: LanguageModel) -> list[str]:
    """Each vocabulary token's text, decoded on its own (index = token id)."""
    hf = _hf(model)
    size = int(hf.input_embeddings().shape[0])
    return list(hf.tokenizer.batch_decode([[i] for i in range(size)]))


def special_token_ids(model: LanguageModel) -> set[int]:
    """Ids of special and added tokens (they render as markup the tokenizer parses back)."""
    tokenizer = _hf(model).tokenizer
    ids = set(tokenizer.all_special_ids)
    ids.update(int(i) for i in getattr(tokenizer, "added_tokens_decoder", {}) or {})
    return ids


def prediction_states(model: LanguageModel, texts: Sequence[str]) -> np.ndarray:
    """The vector the output head multiplies by the output embeddings, at the position that
    predicts the label word (causal: the last text token; masked: a single mask), per text.

    Returns:
        float64 ``[len(texts), hidden]``: the input of the output-embedding layer (for BERT, after
        the MLM head's transform), so that ``states @ output_embeddings(model).T`` are logits.
    """
    import torch

    hf = _hf(model)
    rows, positions = [], []
    for text in texts:
        if hf.kind == "causal":
            rows.append(hf._fit(hf._text_ids(text), hf.max_length))
            positions.append(len(rows[-1]) - 1)
        else:
            row, first = hf._row(text, 1)
            rows.append(row)
            positions.append(first)
    captured: list[torch.Tensor] = []

    def hook(_module: Any, args: tuple[torch.Tensor, ...]) -> None:
        captured.append(args[0].detach())

    out = []
    handle = hf.hf_model.get_output_embeddings().register_forward_pre_hook(hook)
    try:
        with torch.inference_mode():
            for batch in hf._batches([len(r) for r in rows]):
                ids, mask = hf._pad([rows[i] for i in batch])
                captured.clear()
                hf.hf_model(input_ids=ids, attention_mask=mask)
                states = captured[-1]
                where = torch.tensor([positions[i] for i in batch], device=hf.device)
                picked = states[torch.arange(len(batch), device=hf.device), where]
                out.extend(zip(batch, picked.double().cpu().numpy(), strict=True))
    finally:
        handle.remove()
    return np.stack([v for _, v in sorted(out, key=lambda x: x[0])])


def output_embeddings(model: LanguageModel) -> np.ndarray:
    """The ``[vocab, hidden]`` output embedding matrix (tied to the input one in many models)."""
    weights = _hf(model).hf_model.get_output_embeddings().weight
    return weights.detach().float().cpu().numpy()
