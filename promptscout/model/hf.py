"""The shared Hugging Face plumbing of the causal and masked backends.

:class:`HFLanguageModel` holds what both backends do the same way: the model's identity
(:attr:`~HFLanguageModel.fingerprint`), tokens and label-word ids (one spacing rule,
:func:`~promptscout.prompts.continuation`), batching and padding, the cost counters, and the check
that the body/head split reproduces the model's own logits. Around it: transformers' key/value
cache API across versions (:func:`new_cache`, :func:`cache_tensors`, :func:`cache_argument`), and
:func:`quiet_transformers`, which hides transformers' progress bars while a model loads.
Importing this module is cheap: torch and transformers load when a model does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.model.base import LanguageModel
from promptscout.model.compute import configure_threads, flop_rates
from promptscout.prompts import chat_messages, continuation

if TYPE_CHECKING:
    import torch


class HFLanguageModel(LanguageModel):
    """Shared plumbing of the Hugging Face backends (causal and masked).

    Attributes:
        hf_model: the ``transformers`` model, in eval mode (white-box access for gradient
            searchers: ``hf_model(inputs_embeds=...)``).
        tokenizer: its tokenizer. Truncation is never enabled; backends cut inputs themselves.
        device: the torch device of the model.
        dtype: the torch dtype of the weights.
    """

    def __init__(self, name: str, hf_model: Any, tokenizer: Any, *, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise PromptscoutError(f"batch_size must be at least 1, got {batch_size}")
        self.name = name
        self.hf_model = hf_model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.tokens_forwarded = 0
        self.tokens_computed = 0
        self.flops = 0
        self._flop_rates = flop_rates(hf_model)
        self.device = next(hf_model.parameters()).device
        if self.device.type == "cpu":
            configure_threads()
        self.dtype = next(hf_model.parameters()).dtype
        self.max_length = _context_size(hf_model.config, tokenizer)
        # Special tokens the tokenizer wraps a text in ([CLS] ... [SEP], <s> ..., or nothing),
        # found once by comparing a probe with and without them.
        probe = "hello world"
        plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = tokenizer(probe)["input_ids"]
        start = next(
            (k for k in range(len(full) - len(plain) + 1) if full[k : k + len(plain)] == plain), 0
        )
        self.prefix_ids: list[int] = list(full[:start])
        self.suffix_ids: list[int] = list(full[start + len(plain) :])
        self.pad_id: int = next(
            (i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0
        )
        self._fingerprint: str | None = None
        self._word_cache: dict[str, list[int]] = {}

    # -- identity ------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            import torch

            config = {
                k: v
                for k, v in self.hf_model.config.to_dict().items()
                if not k.startswith("_") and k not in ("transformers_version", "dtype")
            }
            h = hashlib.sha256()
            h.update(type(self.hf_model).__name__.encode())
            h.update(json.dumps(config, sort_keys=True, default=str).encode())
            h.update(str(self.dtype).encode())
            vocab = sorted(self.tokenizer.get_vocab().items())
            h.update(json.dumps(vocab).encode())
            # The input embeddings are a cheap checksum of the weights: any retraining,
            # re-seeding or quantisation changes them.
            weights = self.input_embeddings().detach().to("cpu").contiguous()
            h.update(weights.view(torch.uint8).numpy().tobytes())
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint

    # -- tokens --------------------------------------------------------------------------------

    def _plain(self, text: str) -> str:
        """The text the network reads: a chat prompt (:func:`~promptscout.prompts.chat_text`)
        through the tokenizer's chat template, ready for the assistant's reply; any other text
        as it is."""
        messages = chat_messages(text)
        if messages is None:
            return text
        if not getattr(self.tokenizer, "chat_template", None):
            raise PromptscoutError(
                f"model '{self.name}' has no chat template; set [model] chat = false"
            )
        return str(
            self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )

    @property
    def takes_chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def input_embeddings(self) -> torch.Tensor:
        return self.hf_model.get_input_embeddings().weight

    def _word_ids(self, text: str, word: str) -> list[int]:
        """Token ids of the continuation of ``word`` after ``text`` (see :func:`continuation`)."""
        cont = continuation(text, word)
        if cont not in self._word_cache:  # a handful of label words, tokenised once each
            ids = self.tokenize(cont)
            if not ids:
                raise PromptscoutError(f"label word {word!r} has no tokens in model '{self.name}'")
            if len(self._word_cache) > 50_000:  # label-word searches: keep memory bounded
                self._word_cache.clear()
            self._word_cache[cont] = ids
        return self._word_cache[cont]

    def _logits_at(
        self, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Full-vocabulary logits ``[len(rows), vocab]`` at ``(rows[j], positions[j])``."""
        raise NotImplementedError

    def _score_rows(
        self,
        rows: Sequence[list[int]],
        picks: Sequence[list[tuple[int, int, int, int]]],
        shape: tuple[int, int],
    ) -> np.ndarray:
        """Run id rows through the network and sum the picked log-probabilities.

        Args:
            rows: token id sequences.
            picks: for each row, ``(position, token, text_index, class_index)`` tuples: add
                ``log P(token at position + 1 | row[:position + 1])`` (causal) or
                ``log P(token at position | row)`` (masked) to ``out[text_index, class_index]``.
            shape: the output shape ``(texts, classes)``.

        Returns:
            The float64 array of summed log-probabilities.
        """
        import torch

        out = np.zeros(shape, dtype=np.float64)
        with torch.inference_mode():
            for batch in self._batches([len(r) for r in rows]):
                ids, mask = self._pad([rows[r] for r in batch])
                # Each distinct (row, position) goes through the output head once, however many
                # classes read it.
                slots: dict[tuple[int, int], int] = {}
                sel, tok, ti, ci = [], [], [], []
                for b, r in enumerate(batch):
                    for pos, token, i, c in picks[r]:
                        sel.append(slots.setdefault((b, pos), len(slots)))
                        tok.append(token)
                        ti.append(i)
                        ci.append(c)
                where = torch.tensor(list(slots), dtype=torch.long, device=self.device)
                logits = self._logits_at(ids, mask, where[:, 0], where[:, 1])
                lengths = [len(rows[r]) for r in batch]
                # Bidirectional attention: every token attends the whole row (n * n pairs).
                per_token, per_pair, per_row = self._flop_rates
                self.flops += (
                    per_token * sum(lengths)
                    + per_pair * sum(n * n for n in lengths)
                    + per_row * len(slots)
                )
                logp = torch.log_softmax(logits.float(), dim=-1)
                sel_t = torch.tensor(sel, dtype=torch.long, device=self.device)
                tok_t = torch.tensor(tok, dtype=torch.long, device=self.device)
                values = logp[sel_t, tok_t].double().cpu().numpy()
                np.add.at(out, (np.array(ti), np.array(ci)), values)
        return out

    def next_token_log_probs(self, texts: Sequence[str]) -> np.ndarray:
        """The output head over :meth:`hidden_states` (see :class:`LanguageModel`), in slices
        so that the ``[texts, vocabulary]`` logits stay small."""
        import torch

        head = self._head if getattr(self, "_head", None) is not None else None
        head = head or self.hf_model.get_output_embeddings()
        hidden = self.hidden_states(texts)
        out = []
        with torch.inference_mode():
            for start in range(0, len(hidden), 64):
                h = torch.tensor(hidden[start : start + 64], device=self.device, dtype=self.dtype)
                out.append(torch.log_softmax(head(h).float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([int(token)]))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The mean final hidden state over each text's tokens (special tokens included), the
        text cut to the context (see :class:`~promptscout.model.base.LanguageModel`)."""
        rows = [
            self.tokenizer(t, truncation=True, max_length=self.max_length)["input_ids"]
            or [self.pad_id]
            for t in texts
        ]
        self.tokens_forwarded += sum(len(r) for r in rows)
        return self._hidden_at(rows, None)

    def _hidden_at(self, rows: Sequence[list[int]], positions: Sequence[int] | None) -> np.ndarray:
        """The final hidden state (what the output head reads) of each row at its position, or
        its mean over the row's tokens when ``positions`` is None; float32 ``[len(rows),
        hidden]``; rows run in length-sorted, right-padded batches."""
        import torch

        out: list[np.ndarray | None] = [None] * len(rows)
        with torch.inference_mode():
            for batch in self._batches([len(r) for r in rows]):
                ids, mask = self._pad([rows[r] for r in batch])
                if self._body is not None:
                    hidden = self._body(input_ids=ids, attention_mask=mask)[0]
                else:  # the last of the model's hidden states is what its head reads
                    result = self.hf_model(
                        input_ids=ids, attention_mask=mask, output_hidden_states=True
                    )
                    hidden = result.hidden_states[-1]
                lengths = [len(rows[r]) for r in batch]
                per_token, per_pair, _ = self._flop_rates
                self.flops += per_token * sum(lengths) + per_pair * sum(n * n for n in lengths)
                if positions is None:  # mean over the real tokens
                    weights = mask.unsqueeze(-1).to(hidden.dtype)
                    picked = (hidden * weights).sum(1) / weights.sum(1)
                else:
                    picked = hidden[torch.arange(len(batch)), [positions[r] for r in batch]]
                for b, row in zip(batch, picked.float().cpu().numpy(), strict=True):
                    out[b] = row
        return np.stack(out) if rows else np.zeros((0, 0), dtype=np.float32)

    def _check_split(self, body: Any, head: Any, full: Any, probe: list[int]) -> bool:
        """Whether ``head(body(x))`` reproduces the model's own logits on a probe input.

        Backends score by running the body once and the (vocabulary-sized) head only where a label
        token is predicted; this guards that shortcut against models that post-process logits
        (soft-capping, scaling) or wire their head differently.
        """
        import torch

        try:
            with torch.inference_mode():
                x = torch.tensor([probe], dtype=torch.long, device=self.device)
                m = torch.ones_like(x)
                split = head(body(input_ids=x, attention_mask=m)[0]).float()
                ref = full(input_ids=x, attention_mask=m).logits.float()
                return split.shape == ref.shape and bool(
                    torch.allclose(split, ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max()))
                )
        except Exception:  # any failure just means: use the full forward
            return False

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped into batches of similar length (sorted), to cut padding."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[k : k + self.batch_size] for k in range(0, len(order), self.batch_size)]

    def _pad(self, rows: Sequence[Sequence[int]], *, left: bool = False) -> tuple[Any, Any]:
        """Pad id lists into ``(input_ids, attention_mask)`` tensors on the model's device,
        counting their tokens as forwarded."""
        ids, mask = pad_rows(rows, self.pad_id, self.device, left=left)
        real = int(mask.sum())
        self.tokens_forwarded += real
        self.tokens_computed += real
        return ids, mask

    def _flops(self, starts: Sequence[int], lengths: Sequence[int], head_rows: int) -> int:
        """FLOPs of running segments (``lengths``, each after ``starts`` context tokens, causal)
        plus ``head_rows`` output-head rows; see :attr:`LanguageModel.flops`."""
        per_token, per_pair, per_row = self._flop_rates
        pairs = sum(n * s + n * (n + 1) // 2 for s, n in zip(starts, lengths, strict=True))
        return per_token * sum(lengths) + per_pair * pairs + per_row * head_rows


def pad_rows(
    rows: Sequence[Sequence[int]], pad_id: int, device: Any, *, left: bool = False
) -> tuple[Any, Any]:
    """Pad id lists into ``(input_ids, attention_mask)`` tensors on ``device`` (on the left
    with ``left``)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[b, span] = torch.tensor(row, dtype=torch.long)
        mask[b, span] = 1
    return ids.to(device), mask.to(device)


def _context_size(config: Any, tokenizer: Any) -> int:
    """The usable context: the smaller of the model's positions and the tokenizer's limit."""
    sizes = [
        getattr(config, k, None)
        for k in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
    ]
    sizes.append(getattr(tokenizer, "model_max_length", None))
    # Tokenizers without a limit report a huge sentinel (1e30); ignore such values.
    usable = [int(s) for s in sizes if isinstance(s, int) and 0 < s < 10_000_000]
    return min(usable) if usable else 2048


# -- transformers' cache API, across versions ---------------------------------------------------


def new_cache(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """A new ``DynamicCache``, empty or holding ``(keys, values)`` per layer (never reused: the
    model appends to it in place)."""
    from transformers import DynamicCache

    return DynamicCache(layers) if layers else DynamicCache()


def cache_tensors(cache: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-layer key and value tensors ``[batch, kv_heads, length, head_dim]`` of a cache."""
    if hasattr(cache, "layers"):
        return [x.keys for x in cache.layers], [x.values for x in cache.layers]
    return list(cache.key_cache), list(cache.value_cache)  # transformers < 4.54


def cache_argument(module: Any) -> str:
    """The name of the cache argument of ``module.forward`` (``cache`` since transformers 5.2x,
    ``past_key_values`` before)."""
    import inspect

    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


@contextlib.contextmanager
def quiet_transformers(verbosity: int | None = None) -> Iterator[None]:
    """Hide transformers' progress bars (and, if given, lower its log verbosity) for a block."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    if verbosity is not None:
        hf_logging.set_verbosity(verbosity)
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(level)
