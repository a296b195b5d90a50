"""Hugging Face causal-LM backend (anything ``AutoModelForCausalLM`` loads).

:class:`CausalLM` turns texts and label words into token id rows and the positions to read
(each text tokenised on its own, cut from the left to fit the context), and generates greedy
continuations. Its rows are scored by the shared-prefix engine it owns
(:class:`~promptscout.model.engine.PrefixEngine`, ``model.engine``), which runs each common token
prefix once, after a learned key/value prefix if one is given (prefix tuning:
:mod:`promptscout.model.kv_prefix`); soft prompts are scored by :mod:`promptscout.model.soft_input`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from promptscout.adapters import is_adapter
from promptscout.errors import PromptscoutError
from promptscout.model.engine import PrefixEngine
from promptscout.model.hf import HFLanguageModel
from promptscout.model.kv_prefix import check_kv
from promptscout.model.prefix import HIDDEN, Pick
from promptscout.model.soft_input import score_soft

# Config fields that mean the logits are transformed after the output head (Gemma-2 soft-capping,
# Cohere/Granite scaling): such models are scored with the plain full forward.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


class _OnEngine:
    """A :class:`CausalLM` attribute that lives on its engine, read and set through the model."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, model: Any, owner: type | None = None) -> Any:
        return self if model is None else getattr(model.engine, self.name)

    def __set__(self, model: Any, value: Any) -> None:
        setattr(model.engine, self.name, value)


class CausalLM(HFLanguageModel):
    """A causal (left-to-right) language model.

    Inputs longer than the context are cut from the LEFT of the text: the end of a prompt carries
    the cue ("Sentiment:"), the start is usually instructions or demonstrations. Leading special
    tokens (BOS) are kept. For scoring, the text keeps as many tokens as fit together with the
    longest label word (less its last token, which is predicted but never fed); for generation, as
    many as fit with ``max_new_tokens``.

    Attributes:
        engine: the shared-prefix scoring engine (:class:`~promptscout.model.engine.PrefixEngine`).
        batch_tokens, min_shared_tokens, cache_budget_tokens: the engine's scoring knobs (the
            defaults suit CPUs and GPUs alike), read and set through the model.
    """

    kind = "causal"
    batch_tokens = _OnEngine("batch_tokens")
    min_shared_tokens = _OnEngine("min_shared_tokens")
    cache_budget_tokens = _OnEngine("cache_budget_tokens")
    # The body/head split, the lean pass and the sharing switch: soft-prompt scoring reads the
    # split, tests switch the shortcuts off through these.
    _body = _OnEngine("body")
    _head = _OnEngine("head")
    _fast = _OnEngine("fast")
    _share = _OnEngine("share")

    def __init__(self, name: str, hf_model: Any, tokenizer: Any, *, batch_size: int = 16) -> None:
        super().__init__(name, hf_model, tokenizer, batch_size=batch_size)
        # An empty text still needs one token to predict the label word from.
        self.start_id: int = next(
            (i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None),
            self.pad_id,
        )
        self.engine = PrefixEngine(self, *self._split_body_and_head())

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
        return self._score(texts, label_words)

    def score_labels_kv(
        self,
        texts: Sequence[str],
        label_words: Sequence[str],
        kv_prefix: torch.Tensor | np.ndarray,
    ) -> np.ndarray:
        """:meth:`score_labels` after a learned key/value prefix (prefix tuning, see
        :mod:`promptscout.model.kv_prefix`): ``kv_prefix`` is ``[layers, 2, kv_heads, n,
        head_dim]``; every sequence reads it before its first token, which sits at position n
        (texts are cut to fit the context less those n positions).

        Raises:
            PromptscoutError: ``kv_prefix`` does not fit the model's key/value cache.
        """
        check_kv(kv_prefix, self.hf_model.config)
        return self._score(texts, label_words, torch.as_tensor(kv_prefix))

    def _score(
        self,
        texts: Sequence[str],
        label_words: Sequence[str],
        kv_prefix: torch.Tensor | None = None,
    ) -> np.ndarray:
        """Label scores of ``texts`` from the engine, after ``kv_prefix`` if one is given."""
        texts, words = [self._plain(t) for t in texts], list(label_words)
        reserve = 0 if kv_prefix is None else kv_prefix.shape[3]
        rows, picks = self._label_rows(texts, words, reserve=reserve)
        out = np.zeros((len(texts), len(words)), dtype=np.float64)
        # The logical cost (each sequence as if run alone): stable whatever the batching.
        self.tokens_forwarded += sum(len(r) for r in rows)
        if rows:
            self.engine.score(rows, picks, out, kv_prefix=kv_prefix)
        return out

    def score_labels_and_hidden(
        self, texts: Sequence[str], label_words: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score_labels` and, from the same pass, the final hidden state at each text's
        last position (where the label words' first tokens are read): a learned verbalizer's
        inputs at the cost of scoring alone, shared prefixes included."""
        if self.engine.body is None:  # only the full forward is exact: no hidden states there
            return super().score_labels_and_hidden(texts, label_words)
        texts, words = [self._plain(t) for t in texts], list(label_words)
        rows, picks = self._label_rows(texts, words, hidden=True)
        out = np.zeros((len(texts), len(words)), dtype=np.float64)
        hidden = np.zeros((len(texts), self.engine.head.weight.shape[1]), dtype=np.float32)
        self.tokens_forwarded += sum(len(r) for r in rows)
        if rows:
            self.engine.score(rows, picks, out, hidden)
        return out, hidden

    def _label_rows(
        self, texts: list[str], words: list[str], reserve: int = 0, hidden: bool = False
    ) -> tuple[list[list[int]], list[list[Pick]]]:
        """The id rows and picks that score ``words`` after each text (see :meth:`score_labels`);
        ``reserve`` context positions are kept free (for soft-prompt vectors or a learned
        key/value prefix); with ``hidden``, each text's first row also reads the hidden state at
        its last position."""
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
            first = len(rows)
            single = [(c, ids[0]) for c, ids in enumerate(conts) if len(ids) == 1]
            if single:
                rows.append(t)
                picks.append([(last, tok, i, c) for c, tok in single])
            for c, ids in enumerate(conts):
                if len(ids) > 1:
                    rows.append(t + ids[:-1])
                    picks.append([(last + j, tok, i, c) for j, tok in enumerate(ids)])
            if hidden:
                if len(rows) == first:  # no label word at all: the text alone
                    rows.append(t)
                    picks.append([])
                picks[first].append((last, 0, i, HIDDEN))
        return rows, picks

    def score_labels_soft(
        self, texts: Sequence[str], label_words: Sequence[str], soft: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """:meth:`score_labels` with soft-prompt vectors before each text's embeddings (see
        :mod:`promptscout.model.soft_input`); a PEFT adapter's bundle is scored by
        :mod:`promptscout.model.adapter_input`."""
        if is_adapter(soft):
            from promptscout.model.adapter_input import score_adapter

            return score_adapter(self, texts, label_words, soft)
        return score_soft(self, texts, label_words, soft)

    def hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        """The final hidden state at each text's last position, where the label word's first
        token is predicted (see :class:`~promptscout.model.base.LanguageModel`)."""
        rows = [self._fit(self._text_ids(self._plain(t)), self.max_length) for t in texts]
        self.tokens_forwarded += sum(len(r) for r in rows)
        return self._hidden_at(rows, [len(r) - 1 for r in rows])

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self,
        texts: Sequence[str],
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """Continuation of each text (batched with left padding): greedy, or sampled at
        ``temperature`` from torch's generator seeded with ``seed`` (forked, so the caller's
        random state is untouched).

        Returns only the new text, decoded without special tokens (whitespace kept as generated).
        ``tokens_forwarded`` grows by the prompt tokens plus the generated tokens.
        """
        from transformers import GenerationConfig

        texts = [self._plain(t) for t in texts]
        prompts = [self._fit(self._text_ids(t), self.max_length - max_new_tokens) for t in texts]
        eos = self.hf_model.generation_config.eos_token_id
        sampled = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        config = GenerationConfig(
            **(sampled if temperature > 0 else {"do_sample": False}),
            max_new_tokens=max_new_tokens,
            pad_token_id=self.pad_id,
            eos_token_id=eos if eos is not None else self.tokenizer.eos_token_id,
        )
        out = [""] * len(texts)
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
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

    def _rng_devices(self) -> list[int]:
        """The CUDA devices whose random state sampling touches (none on CPU)."""
        device = self.hf_model.device
        return [device.index or 0] if device.type == "cuda" else []
