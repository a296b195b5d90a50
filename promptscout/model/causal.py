"""Hugging Face causal-LM backend (anything ``AutoModelForCausalLM`` loads).

Scoring is built to do as little work as the numbers allow, and never to change them:

- every text is tokenised on its own, exactly as a plain forward would see it; the sequences then
  share work on common *token* prefixes (:mod:`promptscout.model.prefix`): instructions and
  demonstrations run once for a whole batch of examples, an example's tokens once for all the
  input-first prompts that start with it, a text once for all its multi-token label words;
- a shared prefix's keys and values serve its continuations, which run after it at their own
  positions, right-padded, with the prefix's cache laid before them;
- passes are packed by length (``batch_tokens`` tokens each) so little padding is computed;
- the vocabulary-sized output head runs only at the positions that predict a label token;
- Llama-family models run a lean forward of their own weights (:mod:`promptscout.model.fast`),
  checked against the model's own forward when the model loads; other models run their own
  forward with a fresh ``DynamicCache`` per pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from promptscout.errors import PromptscoutError
from promptscout.model.base import HFLanguageModel
from promptscout.model.fast import FastDecoder, fast_decoder
from promptscout.model.prefix import Node, Pick, build_tree

Context = tuple[torch.Tensor, "torch.Tensor | None"]
"""Keys and values of the contexts of a batch's segments: see :meth:`CausalLM._context`."""

# Config fields that mean the logits are transformed after the output head (Gemma-2 soft-capping,
# Cohere/Granite scaling): such models are scored with the plain full forward.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


class CausalLM(HFLanguageModel):
    """A causal (left-to-right) language model.

    Inputs longer than the context are cut from the LEFT of the text: the end of a prompt carries
    the cue ("Sentiment:"), the start is usually instructions or demonstrations. Leading special
    tokens (BOS) are kept. For scoring, the text keeps as many tokens as fit together with the
    longest label word (less its last token, which is predicted but never fed); for generation, as
    many as fit with ``max_new_tokens``.

    Attributes (scoring knobs; the defaults suit CPUs and GPUs alike):
        batch_tokens: a pass holds at least ``batch_size`` sequences, and more while they fit in
            this many (padded) tokens: short continuations after a shared prefix batch widely.
        min_shared_tokens: a common prefix shorter than this is recomputed by each sequence
            rather than shared (sharing costs a cache and a pass of its own).
        cache_budget_tokens: at most this many tokens of shared prefixes keep their key/value
            caches at once (bounds memory; the caches of one tree level are processed in
            chunks of this size).
    """

    kind = "causal"

    def __init__(self, name: str, hf_model: Any, tokenizer: Any, *, batch_size: int = 16) -> None:
        super().__init__(name, hf_model, tokenizer, batch_size=batch_size)
        # An empty text still needs one token to predict the label word from.
        self.start_id: int = next(
            (i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None),
            self.pad_id,
        )
        self._body, self._head = self._split_body_and_head()
        self.min_shared_tokens = 8
        self.batch_tokens = 1024
        self.cache_budget_tokens = 4096
        self._cache_arg = _cache_argument(self._body or hf_model)
        self._fast: FastDecoder | None = None
        self._share = self._check_sharing()
        self._fast = self._check_fast()

    def _split_body_and_head(self) -> tuple[Any, Any]:
        """(decoder body, output head), or (None, None) when only the full forward is exact."""
        model, config = self.hf_model, self.hf_model.config
        if any(getattr(config, k, None) not in (None, 1, 1.0) for k in _LOGIT_TRANSFORMS):
            return None, None
        try:
            body, head = model.get_decoder(), model.get_output_embeddings()
        except Exception:
            return None, None
        if body is None or body is model or head is None:
            return None, None

        def full(**kw: Any) -> Any:
            return model(**kw, use_cache=False)

        def run_body(**kw: Any) -> Any:
            return body(**kw, use_cache=False)

        if not self._check_split(run_body, head, full, self._text_ids("hello world")):
            return None, None
        return body, head

    # -- ids -----------------------------------------------------------------------------------

    def _text_ids(self, text: str) -> list[int]:
        """The tokenizer's own leading special tokens (BOS or none) + the text; never an EOS."""
        ids = self.prefix_ids + self.tokenize(text)
        return ids or [self.start_id]

    def _fit(self, ids: list[int], budget: int) -> list[int]:
        """Cut ``ids`` from the left (after any leading special tokens) to ``budget`` tokens."""
        if len(ids) <= budget:
            return ids
        keep = budget - len(self.prefix_ids)
        if keep < 1:
            raise PromptscoutError(
                f"model '{self.name}' has a context of {self.max_length} tokens: "
                "too short for these label words or max_new_tokens"
            )
        return self.prefix_ids + ids[len(ids) - keep :]

    # -- scoring -------------------------------------------------------------------------------

    def score_labels(self, texts: Sequence[str], label_words: Sequence[str]) -> np.ndarray:
        """Log-probability of each label word after each text (see :class:`LanguageModel`).

        Each text is tokenised on its own, exactly as a plain forward would see it. The output
        head reads the text's last position for every word's first token; each further token of
        a multi-token word is read teacher-forced from the sequence ``text + word[:-1]``. All
        these sequences go into one shared-prefix tree (:mod:`promptscout.model.prefix`):
        common token prefixes (instructions and demonstrations, an example shared by many
        input-first prompts, a text shared by its multi-token words) run once, and their
        key/value cache serves every continuation.
        """
        texts, words = list(texts), list(label_words)
        rows, picks = self._label_rows(texts, words)
        out = np.zeros((len(texts), len(words)), dtype=np.float64)
        # The logical cost (each sequence as if run alone): stable whatever the batching.
        self.tokens_forwarded += sum(len(r) for r in rows)
        if rows:
            min_shared = self.min_shared_tokens if self._share else 1 << 62
            with torch.inference_mode():
                self._run(build_tree(rows, picks, min_shared=min_shared), out)
        return out

    def _label_rows(
        self, texts: list[str], words: list[str], reserve: int = 0
    ) -> tuple[list[list[int]], list[list[Pick]]]:
        """The id rows and picks that score ``words`` after each text (see :meth:`score_labels`);
        ``reserve`` context positions are kept free (for soft-prompt vectors)."""
        rows: list[list[int]] = []
        picks: list[list[Pick]] = []
        # One call to the (Rust) tokenizer for all texts: the same ids as one text at a time.
        tokenized = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        for i, (text, ids) in enumerate(zip(texts, tokenized, strict=True)):
            conts = [self._word_ids(text, w) for w in words]
            longest = max((len(c) for c in conts), default=1)
            t = self.prefix_ids + list(ids) or [self.start_id]  # as _text_ids(text)
            t = self._fit(t, self.max_length - reserve - longest + 1)
            last = len(t) - 1
            single = [(c, ids[0]) for c, ids in enumerate(conts) if len(ids) == 1]
            if single:
                rows.append(t)
                picks.append([(last, tok, i, c) for c, tok in single])
            for c, ids in enumerate(conts):
                if len(ids) > 1:
                    rows.append(t + ids[:-1])
                    picks.append([(last + j, tok, i, c) for j, tok in enumerate(ids)])
        return rows, picks

    def score_labels_soft(
        self, texts: Sequence[str], label_words: Sequence[str], soft: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """:meth:`score_labels` with soft-prompt vectors before each text's embeddings (see
        :mod:`promptscout.model.soft`)."""
        from promptscout.model.soft import score_soft

        return score_soft(self, texts, label_words, soft)

    def _run(self, root: Node, out: np.ndarray) -> None:
        """Run every segment of the tree once, parents before children, adding picks to ``out``.

        Segments whose caches are needed run first, in chunks whose caches fit a memory budget;
        each chunk's subtrees finish (and its caches are dropped) before the next chunk starts.
        """
        tasks: list[tuple[str, list[Node]]] = [("run", list(root.children))]
        while tasks:
            action, nodes = tasks.pop()
            if action == "free":
                for node in nodes:
                    node.kv = None
                continue
            leaves = [n for n in nodes if not n.children]
            inner = [n for n in nodes if n.children]
            for batch in self._plan(leaves):
                self._forward(batch, out, keep=False)
            if not inner:
                continue
            chunk, budget = [], self.cache_budget_tokens
            while inner and (not chunk or budget >= len(inner[-1].tokens)):
                chunk.append(inner.pop())
                budget -= len(chunk[-1].tokens)
            for batch in self._plan(chunk):
                self._forward(batch, out, keep=True)
            if inner:
                tasks.append(("run", inner))
            tasks.append(("free", chunk))
            tasks.append(("run", [c for n in chunk for c in n.children]))

    def _plan(self, nodes: list[Node]) -> list[list[Node]]:
        """Split segments into passes of at least ``batch_size`` segments, more while they fit in
        ``batch_tokens`` tokens (short continuations batch widely, so that each matrix product
        still sees enough rows).

        The lean pass packs real tokens, so padding costs it (almost) nothing: siblings stay
        together, which keeps few distinct contexts per pass. The model's own forward computes
        padding, so its passes group segments of similar length instead.
        """
        packed = self._fast is not None and self._body is not None
        if packed:
            rank: dict[int, int] = {}
            for node in nodes:
                rank.setdefault(id(node.parent), len(rank))
            order = sorted(nodes, key=lambda n: (n.start, rank[id(n.parent)], len(n.tokens)))
        else:
            order = sorted(nodes, key=lambda n: (len(n.tokens), n.start))
        batches: list[list[Node]] = []
        tokens = width = 0
        for node in order:
            n = len(node.tokens)
            if batches:
                size = len(batches[-1]) + 1
                cost = tokens + n if packed else size * max(width, n)
                if size <= self.batch_size or cost <= self.batch_tokens:
                    batches[-1].append(node)
                    tokens, width = tokens + n, max(width, n)
                    continue
            batches.append([node])
            tokens = width = n
        return batches

    def _forward(self, batch: list[Node], out: np.ndarray, *, keep: bool) -> None:
        """One forward pass over ``batch``: each segment after its context (its ancestors'
        cached keys and values), at its own absolute positions; adds its picks to ``out``.

        Every real token sees exactly what it would see in its sequence alone: the context
        positions another segment lacks are masked, and padding only ever follows real tokens.
        Segments that have children keep their keys and values in ``node.kv``.
        """
        dev = self.device
        lengths = [len(n.tokens) for n in batch]
        starts = [n.start for n in batch]
        context = max(starts)
        # Each distinct (segment, position) goes through the output head once, however many
        # classes read it.
        slots: dict[tuple[int, int], int] = {}
        sel, tok, ti, ci = [], [], [], []
        for b, node in enumerate(batch):
            for pos, token, i, c in node.picks:
                sel.append(slots.setdefault((b, pos - node.start), len(slots)))
                tok.append(token)
                ti.append(i)
                ci.append(c)
        past = self._context(batch, context) if context else None
        if self._fast is not None and self._body is not None:
            logits, kv = self._fast_pass(batch, lengths, starts, past, list(slots), keep)
            skipped = (sum(lengths) - len(slots)) * self._fast.skipped_flops_per_row
        else:
            logits, kv = self._hf_pass(batch, lengths, starts, past, list(slots), keep)
            skipped = 0
        self.tokens_computed += sum(lengths)
        self.flops += self._flops(starts, lengths, len(slots)) - skipped
        if sel:
            logp = torch.log_softmax(logits.float(), dim=-1)
            sel_t = torch.tensor(sel, dtype=torch.long, device=dev)
            tok_t = torch.tensor(tok, dtype=torch.long, device=dev)
            values = logp[sel_t, tok_t].double().cpu().numpy()
            np.add.at(out, (np.array(ti), np.array(ci)), values)
        if keep:
            assert kv is not None
            keys, values_ = torch.stack([k for k, _ in kv]), torch.stack([v for _, v in kv])
            for b, node in enumerate(batch):
                if node.children:  # [layers, 2, kv_heads, length, head_dim]
                    n = lengths[b]
                    node.kv = torch.stack([keys[:, b, :, :n], values_[:, b, :, :n]], dim=1)

    def _fast_pass(
        self,
        batch: list[Node],
        lengths: list[int],
        starts: list[int],
        past: Context | None,
        slots: list[tuple[int, int]],
        keep: bool,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]] | None]:
        """The lean Llama-family pass (:mod:`promptscout.model.fast`) over packed segments."""
        assert self._fast is not None
        dev = self.device
        ids = torch.tensor([t for n in batch for t in n.tokens], dtype=torch.long, device=dev)
        positions = torch.cat(
            [torch.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)]
        ).clamp_(max=self.max_length - 1)
        offsets = np.cumsum([0, *lengths[:-1]])
        rows = torch.tensor([offsets[b] + j for b, j in slots], dtype=torch.long, device=dev)
        hidden, kv = self._fast(ids, positions.to(dev), lengths, starts, past, rows, keep)
        return self._head(hidden), kv

    def _hf_pass(
        self,
        batch: list[Node],
        lengths: list[int],
        starts: list[int],
        past: Context | None,
        slots: list[tuple[int, int]],
        keep: bool,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]] | None]:
        """The model's own forward over right-padded segments, with a fresh cache for context."""
        dev = self.device
        width, context = max(lengths), max(starts)
        ids = torch.tensor(
            [n.tokens + [self.pad_id] * (width - len(n.tokens)) for n in batch], dtype=torch.long
        )
        span = torch.arange(width)
        mask = None
        if min(lengths) < width or min(starts) < context:
            real = span < torch.tensor(lengths).unsqueeze(1)
            if context:
                seen = torch.arange(context) < torch.tensor(starts).unsqueeze(1)
                real = torch.cat([seen, real], dim=1)
            mask = real.long().to(dev)
        cache = None
        if past is not None:
            table, index = past
            full = (
                table[:, :, index]
                if index is not None
                else table.expand(-1, -1, len(batch), -1, -1, -1)
            )
            cache = self._new_cache([(full[k, 0], full[k, 1]) for k in range(len(full))])
        elif keep:
            cache = self._new_cache([])
        kwargs: dict[str, Any] = {"input_ids": ids.to(dev), "attention_mask": mask}
        if context:
            positions = torch.tensor(starts).unsqueeze(1) + span
            kwargs["position_ids"] = positions.clamp_(max=self.max_length - 1).to(dev)
        if cache is not None:
            kwargs[self._cache_arg] = cache
            kwargs["use_cache"] = True
        else:
            kwargs["use_cache"] = False
        where = torch.tensor(slots, dtype=torch.long, device=dev).reshape(-1, 2)
        if self._body is None:
            logits = self.hf_model(**kwargs).logits[where[:, 0], where[:, 1]]
        else:
            hidden = self._body(**kwargs)[0]
            logits = self._head(hidden[where[:, 0], where[:, 1]])
        if not keep:
            return logits, None
        keys, values = self._cache_tensors(cache)
        return logits, [
            (k[:, :, context:], v[:, :, context:]) for k, v in zip(keys, values, strict=True)
        ]

    def _context(self, batch: list[Node], context: int) -> Context:
        """Each segment's context (its ancestors' keys and values), as ``(table, index)``:
        ``table`` is ``[layers, 2, P, kv_heads, context, head_dim]``, one row per distinct
        context in the batch (zeros after a shorter one), and ``index`` (``[B]``, or None when
        P is 1) says which row each segment reads. Nothing is copied per segment."""
        chains: dict[tuple[int, ...], int] = {}
        rows: list[list[Node]] = []
        index: list[int] = []
        for node in batch:
            ancestors = node.ancestors()
            key = tuple(id(a) for a in ancestors)
            if key not in chains:
                chains[key] = len(rows)
                rows.append(ancestors)
            index.append(chains[key])
        if len(rows) == 1 and len(rows[0]) == 1:  # one prompt's prefix: use its cache as is
            return rows[0][0].kv.unsqueeze(2), None
        sample = rows[0][0].kv
        layers, _, heads, _, dim = sample.shape
        table = sample.new_empty((layers, 2, len(rows), heads, context, dim))
        for r, ancestors in enumerate(rows):
            for a in ancestors:
                table[:, :, r, :, a.start : a.end] = a.kv
            table[:, :, r, :, ancestors[-1].end :] = 0  # masked, but must stay finite
        if len(rows) == 1:
            return table, None
        return table, torch.tensor(index, dtype=torch.long, device=table.device)

    # -- caches --------------------------------------------------------------------------------

    def _new_cache(self, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
        """A new ``DynamicCache``, empty or holding ``(keys, values)`` per layer (never reused:
        the model appends to it in place)."""
        from transformers import DynamicCache

        return DynamicCache(layers) if layers else DynamicCache()

    @staticmethod
    def _cache_tensors(cache: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-layer key and value tensors ``[batch, kv_heads, length, head_dim]`` of a cache."""
        if hasattr(cache, "layers"):
            return [x.keys for x in cache.layers], [x.values for x in cache.layers]
        return list(cache.key_cache), list(cache.value_cache)  # transformers < 4.54

    def _probe(self, min_shared: int) -> np.ndarray:
        """Scores of a small fixed tree (nested shared prefixes, unequal contexts and lengths
        in one pass) by the current engine; counters are left unchanged."""
        base = (self._text_ids("the movie was a great film, and the review was positive") * 6)[:6]
        a, b, c, d, x, y = base
        head = base[:3]
        rows = [head + [x, y, a] + [b], head + [x, y, a] + [c], head + [d] + [a], head + [d]]
        picks = [[(p, row[p + 1], r, p) for p in range(len(row) - 1)] for r, row in enumerate(rows)]
        out = np.zeros((len(rows), 8))
        counters = self.tokens_forwarded, self.tokens_computed, self.flops
        try:
            with torch.inference_mode():
                self._run(build_tree(rows, picks, min_shared=min_shared), out)
        finally:
            self.tokens_forwarded, self.tokens_computed, self.flops = counters
        return out

    def _agrees(self, got: np.ndarray, ref: np.ndarray) -> bool:
        tolerance = 1e-3 if self.dtype == torch.float32 else 0.1
        scale = max(1.0, float(np.abs(ref).max()))
        return bool(np.isfinite(got).all()) and bool(
            np.allclose(got, ref, rtol=0, atol=tolerance * scale)
        )

    def _check_sharing(self) -> bool:
        """Whether scoring with shared prefixes reproduces scoring without, on a probe.

        Prefix reuse needs plain full-attention key/value caches and honoured position ids;
        models with sliding or chunked attention, or any model that fails the probe, score every
        sequence from its first token instead.
        """
        config = self.hf_model.config
        if any(getattr(config, k, None) for k in ("sliding_window", "attention_chunk_size")):
            return False
        if any(t != "full_attention" for t in getattr(config, "layer_types", None) or []):
            return False
        try:
            return self._agrees(self._probe(1), self._probe(1 << 62))
        except Exception:  # any failure just means: no sharing
            return False

    def _check_fast(self) -> FastDecoder | None:
        """The lean decoder pass, if the architecture has one and it reproduces the model's own
        forward on the probe (with and without shared prefixes)."""
        if self._body is None:
            return None
        fast = fast_decoder(self.hf_model)
        if fast is None:
            return None
        saved, self._fast = self._fast, None
        try:
            reference = self._probe(1 << 62)
            self._fast = fast
            ok = self._agrees(self._probe(1 << 62), reference)
            ok = ok and (not self._share or self._agrees(self._probe(1), reference))
        except Exception:
            ok = False
        finally:
            self._fast = saved
        return fast if ok else None

    # -- generation ----------------------------------------------------------------------------

    def generate(self, texts: Sequence[str], max_new_tokens: int = 32) -> list[str]:
        """Greedy continuation of each text (batched with left padding).

        Returns only the new text, decoded without special tokens (whitespace kept as generated).
        ``tokens_forwarded`` grows by the prompt tokens plus the generated tokens.
        """
        from transformers import GenerationConfig

        texts = list(texts)
        prompts = [self._fit(self._text_ids(t), self.max_length - max_new_tokens) for t in texts]
        eos = self.hf_model.generation_config.eos_token_id
        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.pad_id,
            eos_token_id=eos if eos is not None else self.tokenizer.eos_token_id,
        )
        out = [""] * len(texts)
        with torch.inference_mode():
            for batch in self._batches([len(p) for p in prompts]):
                ids, mask = self._pad([prompts[i] for i in batch], left=True)
                gen = self.hf_model.generate(
                    input_ids=ids, attention_mask=mask, generation_config=config
                )
                new = gen[:, ids.shape[1] :]
                self.tokens_forwarded += int((new != self.pad_id).sum())
                for b, i in enumerate(batch):
                    out[i] = self.tokenizer.decode(new[b].tolist(), skip_special_tokens=True)
        return out


def _cache_argument(module: Any) -> str:
    """The name of the cache argument of ``module.forward`` (``cache`` since transformers 5.2x,
    ``past_key_values`` before)."""
    import inspect

    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"
