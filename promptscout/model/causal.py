"""Hugging Face causal-LM backend (anything ``AutoModelForCausalLM`` loads).

Scoring runs the decoder body over the prompts once and applies the vocabulary-sized output head
only at the few positions that predict a label token: with two single-token label words that is one
head application per prompt instead of one per prompt token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from promptscout.errors import PromptscoutError
from promptscout.model.base import HFLanguageModel

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

    def _logits_at(
        self, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        if self._body is None:
            return self.hf_model(input_ids=ids, attention_mask=mask, use_cache=False).logits[
                rows, positions
            ]
        # Right padding: every real token sits at its natural position, so no position ids are
        # needed and the padding (after the real tokens) is never attended to.
        hidden = self._body(input_ids=ids, attention_mask=mask, use_cache=False)[0]
        return self._head(hidden[rows, positions])

    def score_labels(self, texts: Sequence[str], label_words: Sequence[str]) -> np.ndarray:
        """Log-probability of each label word after each text (see :class:`LanguageModel`).

        One row per text serves every single-token label word (the head at its last position);
        each multi-token word adds a row ``text + word[:-1]`` scored teacher-forced.
        """
        texts, words = list(texts), list(label_words)
        rows: list[list[int]] = []
        picks: list[list[tuple[int, int, int, int]]] = []
        for i, text in enumerate(texts):
            conts = [self._word_ids(text, w) for w in words]
            longest = max((len(c) for c in conts), default=1)
            t = self._fit(self._text_ids(text), self.max_length - longest + 1)
            last = len(t) - 1
            single = [(c, ids[0]) for c, ids in enumerate(conts) if len(ids) == 1]
            if single:
                rows.append(t)
                picks.append([(last, tok, i, c) for c, tok in single])
            for c, ids in enumerate(conts):
                if len(ids) > 1:
                    rows.append(t + ids[:-1])
                    picks.append([(last + j, tok, i, c) for j, tok in enumerate(ids)])
        return self._score_rows(rows, picks, (len(texts), len(words)))

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
