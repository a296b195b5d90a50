"""A lean forward pass for Llama-family decoders (Llama, Mistral without sliding window, Qwen2).

It reads the Hugging Face module's own weights (nothing is copied or changed) and computes the
same function with less work around the matrix products, which is where a small model on a CPU
loses its time:

- sequences are *packed*: every dense operation (projections, MLP, norms) runs on the real tokens
  only, never on padding; they are laid out padded only around the attention kernel;
- the residual additions are fused into the projections (``addmm``), the RMS norms are torch's
  fused kernel, the rotary embedding is applied in place;
- cached context (a shared prefix) is attended directly from its key/value tensors, with one mask
  per pass; no cache object is created or grown;
- the last layer's attention output, MLP and final norm run only on the rows the output head reads.

:class:`~promptscout.model.engine.PrefixEngine` uses it when :func:`fast_decoder` accepts the
model and a probe reproduces the model's own numbers; otherwise it runs the model's forward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

SUPPORTED = ("llama", "mistral", "qwen2")


class FastDecoder:
    """The decoder body of a Llama-family model as one function over packed tokens."""

    def __init__(self, hf_model: Any) -> None:
        config = hf_model.config
        body = hf_model.get_decoder()
        if getattr(config, "model_type", None) not in SUPPORTED:
            raise ValueError("not a supported architecture")
        if getattr(config, "hidden_act", "silu") != "silu":
            raise ValueError("unsupported activation")
        if getattr(config, "sliding_window", None):
            raise ValueError("sliding-window attention")
        if not hasattr(F, "rms_norm"):  # torch < 2.4
            raise ValueError("no fused RMS norm")
        self.embed = body.embed_tokens
        self.rotary = body.rotary_emb
        self.norm = body.norm
        self.layers = []
        for layer in body.layers:
            attn, mlp = layer.self_attn, layer.mlp
            linears = [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj]
            linears += [mlp.gate_proj, mlp.up_proj, mlp.down_proj]
            if any(type(m) is not torch.nn.Linear for m in linears):
                raise ValueError("quantised or wrapped linear layers")
            norms = (layer.input_layernorm, layer.post_attention_layernorm)
            if any(getattr(n, "weight", None) is None for n in norms):
                raise ValueError("unexpected norm")
            self.layers.append((layer, attn, mlp))
        first = body.layers[0].self_attn
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = first.head_dim
        self.scaling = float(first.scaling)
        self.dtype = self.embed.weight.dtype
        # Per row of the last layer not computed: its output projection and MLP.
        last = body.layers[-1]
        rest = (last.self_attn.o_proj, last.mlp.gate_proj, last.mlp.up_proj, last.mlp.down_proj)
        self.skipped_flops_per_row = 2 * sum(m.weight.numel() for m in rest)

    def _rms(self, norm: Any, x: torch.Tensor) -> torch.Tensor:
        eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", 1e-6)
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), norm.weight, eps)
        # As the Hugging Face module does: normalise in float32, scale in the model's dtype.
        return norm.weight * F.rms_norm(x.float(), (x.shape[-1],), None, eps).to(x.dtype)

    def __call__(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        lengths: list[int],
        starts: list[int],
        context: tuple[torch.Tensor, torch.Tensor | None] | None,
        rows: torch.Tensor,
        keep: bool,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]] | None]:
        """Run packed segments and return the final hidden states at ``rows``.

        Args:
            ids: ``[N]`` token ids, the segments one after another.
            positions: ``[N]`` absolute position of each token.
            lengths: each segment's length (summing to N).
            starts: each segment's context length (its first token's position).
            context: ``(table, index)`` or None: ``table`` is ``[layers, 2, P, kv_heads, C,
                head_dim]``, P distinct contexts (each from position 0, zeros after), and segment
                b reads row ``index[b]`` (``index`` None: P is 1, shared by all).
            rows: ``[R]`` packed indices of the tokens whose hidden states are wanted.
            keep: also return each layer's new keys and values, padded ``[B, kv_heads, T,
                head_dim]`` (segment b's in its first ``lengths[b]`` positions).

        Returns:
            ``([R, hidden], new keys and values per layer or None)``.
        """
        dev = ids.device
        n, b, width = len(ids), len(lengths), max(lengths)
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        ctx = context[0].shape[4] if context else 0
        packed = all(length == width for length in lengths)  # no padding: reshape suffices
        if not packed:
            offsets = torch.tensor([k * width for k in range(b)], device=dev)
            seg_of = torch.repeat_interleave(
                torch.arange(b, device=dev), torch.tensor(lengths, device=dev)
            )
            first = torch.cumsum(torch.tensor([0, *lengths[:-1]], device=dev), 0)
            dest = offsets[seg_of] + torch.arange(n, device=dev) - first[seg_of]
        mask = self._mask(lengths, starts, width, ctx, dev)

        x = self.embed(ids)
        cos, sin = self.rotary(x, positions.unsqueeze(0))
        cos, sin = cos[0].unsqueeze(1), sin[0].unsqueeze(1)  # [N, 1, head_dim]
        half = dim // 2
        cos_h, sin_1, sin_2 = cos[..., :half], sin[..., :half], sin[..., half:]
        new_kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        last = len(self.layers) - 1
        for index, (layer, attn, mlp) in enumerate(self.layers):
            h = self._rms(layer.input_layernorm, x)
            qkv = torch.cat(
                [F.linear(h, p.weight, p.bias) for p in (attn.q_proj, attn.k_proj, attn.v_proj)],
                dim=1,
            ).view(n, heads + 2 * kv_heads, dim)
            # Rotary embedding, in place on the query and key heads (cos is the same on both
            # halves): x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin.
            x1, x2 = qkv[:, : heads + kv_heads, :half], qkv[:, : heads + kv_heads, half:]
            x1_old = x1.clone()
            x1.mul_(cos_h).addcmul_(x2, sin_1, value=-1)
            x2.mul_(cos_h).addcmul_(x1_old, sin_2)
            if packed:
                padded = qkv.view(b, width, heads + 2 * kv_heads, dim)
            else:
                padded = qkv.new_zeros(b * width, heads + 2 * kv_heads, dim)
                padded.index_copy_(0, dest, qkv)
                padded = padded.view(b, width, heads + 2 * kv_heads, dim)
            padded = padded.transpose(1, 2)  # [B, heads, T, dim]
            q = padded[:, :heads]
            k = padded[:, heads : heads + kv_heads]
            v = padded[:, heads + kv_heads :]
            if keep:
                new_kv.append((k, v))
            if context:
                table, rows_of = context
                past_k, past_v = table[index, 0], table[index, 1]  # [P, kv_heads, C, dim]
                if rows_of is None:
                    past_k = past_k.expand(b, -1, -1, -1)
                    past_v = past_v.expand(b, -1, -1, -1)
                else:
                    past_k, past_v = past_k[rows_of], past_v[rows_of]
                k = torch.cat([past_k, k], dim=2)
                v = torch.cat([past_v, v], dim=2)
            out = _attention(q, k, v, mask, self.scaling, causal=mask is None)
            out = out.transpose(1, 2).reshape(b * width, heads * dim)
            if not packed:
                out = out.index_select(0, dest)
            if index == last:  # only the rows the head reads go further
                out, x = out.index_select(0, rows), x.index_select(0, rows)
            o = attn.o_proj
            x = torch.addmm(x if o.bias is None else x + o.bias, out, o.weight.t())
            h = self._rms(layer.post_attention_layernorm, x)
            act = F.silu(F.linear(h, mlp.gate_proj.weight, mlp.gate_proj.bias), inplace=True)
            act.mul_(F.linear(h, mlp.up_proj.weight, mlp.up_proj.bias))
            d = mlp.down_proj
            x = torch.addmm(x if d.bias is None else x + d.bias, act, d.weight.t())
        return self._rms(self.norm, x), (new_kv if keep else None)

    @staticmethod
    def _mask(
        lengths: list[int], starts: list[int], width: int, ctx: int, dev: torch.device
    ) -> torch.Tensor | None:
        """Boolean ``[B, 1, T, C + T]`` attention mask, or None for a plain causal pass."""
        padded = min(lengths) < width
        if not ctx and not padded:
            return None
        span = torch.arange(width, device=dev)
        allowed = span.unsqueeze(0) <= span.unsqueeze(1)  # [T, T] causal
        if padded:
            real = span.unsqueeze(0) < torch.tensor(lengths, device=dev).unsqueeze(1)  # [B, T]
            allowed = allowed.unsqueeze(0) & real.unsqueeze(1)  # [B, T, T]
        else:
            allowed = allowed.unsqueeze(0).expand(len(lengths), width, width)
        if ctx:
            seen = torch.arange(ctx, device=dev).unsqueeze(0) < torch.tensor(
                starts, device=dev
            ).unsqueeze(1)  # [B, C]
            allowed = torch.cat([seen.unsqueeze(1).expand(-1, width, -1), allowed], dim=2)
        return allowed.unsqueeze(1)


def _attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
    *,
    causal: bool,
) -> torch.Tensor:
    """Scaled dot-product attention with grouped key/value heads."""
    if k.shape[1] != q.shape[1]:
        try:
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=causal, scale=scale, enable_gqa=True
            )
        except TypeError:  # torch < 2.5: no grouped heads in the kernel
            groups = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)


def fast_decoder(hf_model: Any) -> FastDecoder | None:
    """A :class:`FastDecoder` for ``hf_model``, or None if its architecture is not supported."""
    try:
        return FastDecoder(hf_model)
    except (ValueError, AttributeError, TypeError):
        return None
