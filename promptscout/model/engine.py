"""The shared-prefix scoring engine of the causal backend.

Scoring is built to do as little work as the numbers allow, and never to change them:

- every text is tokenised on its own, exactly as a plain forward would see it; the sequences then
  share work on common *token* prefixes (:mod:`promptscout.model.prefix`): instructions and
  demonstrations run once for a whole batch of examples, an example's tokens once for all the
  input-first prompts that start with it, a text once for all its multi-token label words;
- a shared prefix's keys and values serve its continuations, which run after it at their own
  positions, right-padded, with the prefix's cache laid before them;
- a learned key/value prefix (prefix tuning) is one more cached context, before every row;
- passes are packed by length (``batch_tokens`` tokens each) so little padding is computed;
- the vocabulary-sized output head runs only at the positions that predict a label token;
- Llama-family models run a lean forward of their own weights (:mod:`promptscout.model.fast`),
  checked against the model's own forward when the model loads; other models run their own
  forward with a fresh ``DynamicCache`` per pass.

:class:`~promptscout.model.causal.CausalLM` builds the id rows and picks; :class:`PrefixEngine`
runs them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from promptscout.model.fast import FastDecoder, fast_decoder
from promptscout.model.hf import HFLanguageModel, cache_argument, cache_tensors, new_cache
from promptscout.model.prefix import HIDDEN, Node, Pick, build_tree, under_context

Context = tuple[torch.Tensor, "torch.Tensor | None"]
"""Keys and values of the contexts of a batch's segments: see :meth:`PrefixEngine._context`."""

NO_SHARING = 1 << 62
"""A ``min_shared`` no common prefix reaches: every sequence runs from its first token."""


class PrefixEngine:
    """Runs id rows through a causal LM's network, each common token prefix once.

    A :class:`~promptscout.model.causal.CausalLM` owns one (``model.engine``); the engine reads
    the model's device, padding id and batch size, and adds what it runs to the model's
    ``tokens_computed`` and ``flops``. When built, it checks on a small probe which of its
    shortcuts reproduce the model's own numbers.

    Attributes:
        body, head: the model's decoder body and output head; None when only the model's own
            full forward is exact (it then runs, with logits everywhere).
        fast: the lean Llama-family pass (:mod:`promptscout.model.fast`), or None.
        share: whether shared prefixes reproduce plain scoring (:meth:`check_sharing`).
        batch_tokens: a pass holds at least ``batch_size`` sequences, and more while they fit in
            this many (padded) tokens: short continuations after a shared prefix batch widely.
        min_shared_tokens: a common prefix shorter than this is recomputed by each sequence
            rather than shared (sharing costs a cache and a pass of its own).
        cache_budget_tokens: at most this many tokens of shared prefixes keep their key/value
            caches at once (bounds memory; the caches of one tree level are processed in
            chunks of this size).
        cache_arg: the name of the cache argument of the body's (or model's) forward.
    """

    def __init__(self, model: HFLanguageModel, body: Any, head: Any) -> None:
        self.model = model
        self.body, self.head = body, head
        self.min_shared_tokens = 8
        self.batch_tokens = 1024
        self.cache_budget_tokens = 4096
        self.cache_arg = cache_argument(body or model.hf_model)
        self.fast: FastDecoder | None = None
        self._hidden_out: np.ndarray | None = None  # where HIDDEN picks go, during score()
        self.share = self.check_sharing()
        self.fast = self.check_fast()

    # -- scoring -------------------------------------------------------------------------------

    def score(
        self,
        rows: list[list[int]],
        picks: list[list[Pick]],
        out: np.ndarray,
        hidden_out: np.ndarray | None = None,
        kv_prefix: torch.Tensor | None = None,
    ) -> None:
        """Run ``rows`` through the network, sharing their common prefixes, and add each row's
        picked log-probabilities (see :data:`~promptscout.model.prefix.Pick`) to ``out``; a pick
        of class :data:`~promptscout.model.prefix.HIDDEN` writes the final hidden state at its
        position to ``hidden_out[text]`` instead (needs the body/head split).

        ``kv_prefix`` (``[layers, 2, kv_heads, n, head_dim]``: learned keys and values, as
        prefix tuning trains them) is a context every row reads first: the row's tokens then sit
        at positions n, n + 1, ... (picks still give positions inside the row)."""
        min_shared = self.min_shared_tokens if self.share else NO_SHARING
        self._hidden_out = hidden_out
        try:
            with torch.inference_mode():
                root = build_tree(rows, picks, min_shared=min_shared)
                if kv_prefix is not None:
                    kv = kv_prefix.to(device=self.model.device, dtype=self.model.dtype)
                    under_context(root, kv.shape[3], kv)
                self._run(root, out)
        finally:
            self._hidden_out = None

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
        packed = self.fast is not None and self.body is not None
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
                if size <= self.model.batch_size or cost <= self.batch_tokens:
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
        dev = self.model.device
        lengths = [len(n.tokens) for n in batch]
        starts = [n.start for n in batch]
        context = max(starts)
        # Each distinct (segment, position) goes through the output head once, however many
        # classes read it.
        slots: dict[tuple[int, int], int] = {}
        sel, tok, ti, ci = [], [], [], []
        hidden_slots, hidden_texts = [], []
        for b, node in enumerate(batch):
            for pos, token, i, c in node.picks:
                slot = slots.setdefault((b, pos - node.start), len(slots))
                if c == HIDDEN:
                    hidden_slots.append(slot)
                    hidden_texts.append(i)
                    continue
                sel.append(slot)
                tok.append(token)
                ti.append(i)
                ci.append(c)
        past = self._context(batch, context) if context else None
        if self.fast is not None and self.body is not None:
            read, kv = self._fast_pass(batch, lengths, starts, past, list(slots), keep)
            skipped = (sum(lengths) - len(slots)) * self.fast.skipped_flops_per_row
        else:
            read, kv = self._hf_pass(batch, lengths, starts, past, list(slots), keep)
            skipped = 0
        self.model.tokens_computed += sum(lengths)
        self.model.flops += self.model._flops(starts, lengths, len(slots)) - skipped
        if hidden_slots:
            assert self._hidden_out is not None and self.body is not None
            picked = read[torch.tensor(hidden_slots, dtype=torch.long, device=dev)]
            self._hidden_out[hidden_texts] = picked.float().cpu().numpy()
        logits = self.head(read) if self.body is not None else read
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
        """The lean Llama-family pass (:mod:`promptscout.model.fast`) over packed segments: the
        final hidden states at ``slots`` (and the new keys and values with ``keep``)."""
        assert self.fast is not None
        dev = self.model.device
        ids = torch.tensor([t for n in batch for t in n.tokens], dtype=torch.long, device=dev)
        positions = torch.cat(
            [torch.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)]
        ).clamp_(max=self.model.max_length - 1)
        offsets = np.cumsum([0, *lengths[:-1]])
        rows = torch.tensor([offsets[b] + j for b, j in slots], dtype=torch.long, device=dev)
        return self.fast(ids, positions.to(dev), lengths, starts, past, rows, keep)

    def _hf_pass(
        self,
        batch: list[Node],
        lengths: list[int],
        starts: list[int],
        past: Context | None,
        slots: list[tuple[int, int]],
        keep: bool,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]] | None]:
        """The model's own forward over right-padded segments, with a fresh cache for context:
        the final hidden states at ``slots`` (the logits there when the model has no body/head
        split), and the new keys and values with ``keep``."""
        dev = self.model.device
        width, context = max(lengths), max(starts)
        ids = torch.tensor(
            [n.tokens + [self.model.pad_id] * (width - len(n.tokens)) for n in batch],
            dtype=torch.long,
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
            cache = new_cache([(full[k, 0], full[k, 1]) for k in range(len(full))])
        elif keep:
            cache = new_cache([])
        kwargs: dict[str, Any] = {"input_ids": ids.to(dev), "attention_mask": mask}
        if context:
            positions = torch.tensor(starts).unsqueeze(1) + span
            kwargs["position_ids"] = positions.clamp_(max=self.model.max_length - 1).to(dev)
        if cache is not None:
            kwargs[self.cache_arg] = cache
            kwargs["use_cache"] = True
        else:
            kwargs["use_cache"] = False
        where = torch.tensor(slots, dtype=torch.long, device=dev).reshape(-1, 2)
        if self.body is None:
            read = self.model.hf_model(**kwargs).logits[where[:, 0], where[:, 1]]
        else:
            read = self.body(**kwargs)[0][where[:, 0], where[:, 1]]
        if not keep:
            return read, None
        keys, values = cache_tensors(cache)
        return read, [
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

    # -- checks --------------------------------------------------------------------------------

    def _probe(self, min_shared: int) -> np.ndarray:
        """Scores of a small fixed tree (nested shared prefixes, unequal contexts and lengths
        in one pass) by the current engine; counters are left unchanged."""
        m = self.model
        text = m.tokenize("the movie was a great film, and the review was positive")
        base = ((m.prefix_ids + text) * 6)[:6]  # real token ids, as the model reads the text
        a, b, c, d, x, y = base
        head = base[:3]
        rows = [head + [x, y, a] + [b], head + [x, y, a] + [c], head + [d] + [a], head + [d]]
        picks = [[(p, row[p + 1], r, p) for p in range(len(row) - 1)] for r, row in enumerate(rows)]
        out = np.zeros((len(rows), 8))
        counters = m.tokens_forwarded, m.tokens_computed, m.flops
        try:
            with torch.inference_mode():
                self._run(build_tree(rows, picks, min_shared=min_shared), out)
        finally:
            m.tokens_forwarded, m.tokens_computed, m.flops = counters
        return out

    def _agrees(self, got: np.ndarray, ref: np.ndarray) -> bool:
        tolerance = 1e-3 if self.model.dtype == torch.float32 else 0.1
        scale = max(1.0, float(np.abs(ref).max()))
        return bool(np.isfinite(got).all()) and bool(
            np.allclose(got, ref, rtol=0, atol=tolerance * scale)
        )

    def check_sharing(self) -> bool:
        """Whether scoring with shared prefixes reproduces scoring without, on a probe.

        Prefix reuse needs plain full-attention key/value caches and honoured position ids;
        models with sliding or chunked attention, or any model that fails the probe, score every
        sequence from its first token instead.
        """
        config = self.model.hf_model.config
        if any(getattr(config, k, None) for k in ("sliding_window", "attention_chunk_size")):
            return False
        if any(t != "full_attention" for t in getattr(config, "layer_types", None) or []):
            return False
        try:
            return self._agrees(self._probe(1), self._probe(NO_SHARING))
        except Exception:  # any failure just means: no sharing
            return False

    def check_fast(self) -> FastDecoder | None:
        """The lean decoder pass, if the architecture has one and it reproduces the model's own
        forward on the probe (with and without shared prefixes)."""
        if self.body is None:
            return None
        fast = fast_decoder(self.model.hf_model)
        if fast is None:
            return None
        saved, self.fast = self.fast, None
        try:
            reference = self._probe(NO_SHARING)
            self.fast = fast
            ok = self._agrees(self._probe(NO_SHARING), reference)
            ok = ok and (not self.share or self._agrees(self._probe(1), reference))
        except Exception:
            ok = False
        finally:
            self.fast = saved
        return fast if ok else None
