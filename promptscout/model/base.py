"""The language-model interface every backend implements, and the shared Hugging Face plumbing.

A :class:`LanguageModel` answers three questions for the rest of promptscout: how likely is each
label word after this prompt (:meth:`~LanguageModel.score_labels`), what does the model write
after it (:meth:`~LanguageModel.generate`), and how many tokens is this (:meth:`tokenize`).
Everything above this package sees plain Python and NumPy; torch stays inside ``model/``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from promptscout.errors import PromptscoutError

if TYPE_CHECKING:
    import torch


def continuation(text: str, word: str) -> str:
    """The text scored after ``text`` for the label word ``word`` (the one spacing rule).

    A word follows the text after one space, as it would in running prose, unless the text already
    ends in whitespace (``"Sentiment:\\n"``) or the word brings its own leading whitespace.

    Args:
        text: the rendered prompt.
        word: the label word.

    Returns:
        ``" " + word`` or ``word``.

    Example:
        >>> continuation("Sentiment:", "positive")
        ' positive'
        >>> continuation("Sentiment:\\n", "positive")
        'positive'
    """
    # An empty text counts as not ending in whitespace: the word is scored as mid-sentence.
    if word and not word[0].isspace() and not text[-1:].isspace():
        return " " + word
    return word


class LanguageModel(ABC):
    """A language model that scores label words after prompts and generates text.

    Attributes:
        name: what the user passed to :func:`~promptscout.model.load_model` (the embedded
            model's name, a Hugging Face name, or a folder).
        kind: ``"causal"`` or ``"masked"``.
        max_length: the context size in tokens; longer inputs are cut from the left.
        tokens_forwarded: running count of the tokens of the sequences scored or generated, each
            counted as if it ran alone (padding, batching and shared-prefix reuse do not change
            it): a stable cost measure for budgets; callers read differences before and after a
            call.
        tokens_computed: running count of the (non-padding) token positions actually run
            through the network; below ``tokens_forwarded`` when prefixes are shared.
        flops: running estimate of the floating-point operations of the forward passes actually
            run (padding excluded): ``2 * body_params`` per computed token, plus
            ``4 * layers * heads * head_dim`` per (token, attended position) pair, plus
            ``2 * hidden * vocab`` per output-head row (see :func:`flop_rates`).
        batch_size: how many sequences go through the network at once (short sequences, such as
            the suffixes after a shared prefix, are batched more at a time).
    """

    name: str
    kind: str
    max_length: int
    tokens_forwarded: int
    tokens_computed: int
    flops: int
    batch_size: int

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A stable hex id of the model's identity (class, config, dtype, weights checksum).

        Equal across reloads of the same weights; use it to key score caches.
        """

    @abstractmethod
    def score_labels(self, texts: Sequence[str], label_words: Sequence[str]) -> np.ndarray:
        """Log-probability of each label word after each text.

        Args:
            texts: rendered prompts.
            label_words: one word (or phrase) per class; placed after each text with
                :func:`continuation`.

        Returns:
            float64 array ``[len(texts), len(label_words)]``: ``log P(word | text)`` normalised
            over the whole vocabulary; a word of several tokens gets the sum of its tokens'
            log-probabilities. Rows are in the order of ``texts``.
        """

    def score_labels_soft(
        self, texts: Sequence[str], label_words: Sequence[str], soft: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """:meth:`score_labels` with a soft prompt: learned vectors (``soft["prefix"]``,
        ``[n, hidden]``) placed before each text's embeddings, after any BOS, and optionally
        replaced final-norm weights (``soft["final_norm"]``); see :mod:`promptscout.soft`.

        Raises:
            PromptscoutError: the backend cannot score soft prompts (only causal LMs can).
        """
        raise PromptscoutError(
            f"model '{self.name}' ({self.kind}) cannot score soft prompts; use a causal LM"
        )

    @abstractmethod
    def generate(self, texts: Sequence[str], max_new_tokens: int = 32) -> list[str]:
        """Greedy continuation of each text: only the new text, special tokens removed.

        Raises:
            PromptscoutError: the model cannot generate (a masked LM).
        """

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text``, without special tokens."""
        return len(self.tokenize(text))

    @abstractmethod
    def input_embeddings(self) -> torch.Tensor:
        """The ``[vocab, hidden]`` input embedding matrix (white-box access; do not modify)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"


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
        """Pad id lists into ``(input_ids, attention_mask)`` tensors on the model's device."""
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, row in enumerate(rows):
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[b, span] = torch.tensor(row, dtype=torch.long)
            mask[b, span] = 1
        real = int(mask.sum())
        self.tokens_forwarded += real
        self.tokens_computed += real
        return ids.to(self.device), mask.to(self.device)

    def _flops(self, starts: Sequence[int], lengths: Sequence[int], head_rows: int) -> int:
        """FLOPs of running segments (``lengths``, each after ``starts`` context tokens, causal)
        plus ``head_rows`` output-head rows; see :attr:`LanguageModel.flops`."""
        per_token, per_pair, per_row = self._flop_rates
        pairs = sum(n * s + n * (n + 1) // 2 for s, n in zip(starts, lengths, strict=True))
        return per_token * sum(lengths) + per_pair * pairs + per_row * head_rows


_THREADS_SET = False
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def physical_cores() -> int:
    """Physical CPU cores this process may use (affinity, hyper-threads and a cgroup quota
    taken into account)."""
    import math
    import os

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cpus:
        cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
            with open(path) as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    count = len(cores)
    try:  # a container's CPU quota ("max 100000" means none)
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def configure_threads(threads: int | None = None) -> None:
    """Use one torch thread per physical core, once per process, unless the user chose.

    Hyper-threads only slow the matrix products down, and torch may count the machine's cores
    rather than the container's. ``OMP_NUM_THREADS`` (or MKL's, OpenBLAS's) set in the
    environment means the user decided: torch's setting is left alone.

    Args:
        threads: Exactly this many threads, whatever the environment says (a Ray worker's share
            of the CPUs); later calls without it keep the setting.
    """
    import os

    import torch

    global _THREADS_SET
    if threads is not None:
        _THREADS_SET = True
        torch.set_num_threads(max(1, threads))
        return
    if _THREADS_SET:
        return
    _THREADS_SET = True
    if any(os.environ.get(v) for v in _THREAD_VARIABLES):
        return
    cores = physical_cores()
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)


def flop_rates(hf_model: Any) -> tuple[int, int, int]:
    """FLOP rates of a model: (per token, per attended (query, key) pair, per output-head row).

    A token costs two FLOPs per parameter of the network body (embedding tables and the output
    head excluded: lookups, and the head runs only where a label token is read); attention adds
    ``2 * heads * head_dim`` FLOPs for the scores and as many for the weighted values, per layer
    and per attended position; each output-head row costs ``2 * hidden * vocab``.
    """
    config = hf_model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    seen: set[int] = set()
    excluded = 0
    for module in (hf_model.get_input_embeddings(), hf_model.get_output_embeddings()):
        weight = getattr(module, "weight", None)
        if weight is not None and id(weight) not in seen:
            seen.add(id(weight))
            excluded += weight.numel()
    total = sum(p.numel() for p in hf_model.parameters())  # tied weights counted once
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    head_dim = int(getattr(config, "head_dim", 0) or (hidden // heads if heads else 0))
    head = getattr(hf_model.get_output_embeddings(), "weight", None)
    per_row = 2 * head.numel() if head is not None else 0
    return 2 * (total - excluded), 4 * layers * heads * head_dim, per_row


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
