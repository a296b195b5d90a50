"""Hugging Face masked-LM backend (anything ``AutoModelForMaskedLM`` loads: BERT, RoBERTa, ...).

A label word is scored PET-style: the prompt gets as many mask tokens as the word has tokens, and
the word's log-probability is the sum of each token's log-probability at its own mask (an
independent approximation; masked LMs have no exact chain rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from promptscout.errors import PromptscoutError
from promptscout.model.hf import HFLanguageModel

MASK_MARKER = "[P]"
"""Where the label word goes in a masked-LM prompt; without it, the word goes at the end."""


class MaskedLM(HFLanguageModel):
    """A masked language model.

    The masks go where the text has the marker ``[P]`` (``"It was [P]. {text}"``), or after the
    text; the spacing rule of :func:`~promptscout.prompts.continuation` decides how the label
    word is tokenised after the text before the masks. The tokenizer's own special tokens
    (``[CLS] ... [SEP]``) wrap the whole. Too-long inputs lose tokens from the left of the text
    before the masks (the text after ``[P]`` is kept, cut at its end only if it alone overflows).
    """

    kind = "masked"

    def __init__(self, name: str, hf_model: Any, tokenizer: Any, *, batch_size: int = 16) -> None:
        super().__init__(name, hf_model, tokenizer, batch_size=batch_size)
        if tokenizer.mask_token_id is None:
            raise PromptscoutError(f"model '{name}' has no mask token; use a causal LM instead")
        self.mask_id: int = tokenizer.mask_token_id
        self._body, self._head = self._split_body_and_head()

    def _split_body_and_head(self) -> tuple[Any, Any]:
        """(encoder, MLM head) when the model is exactly those two modules, else (None, None)."""
        model = self.hf_model
        body = getattr(model, model.base_model_prefix, None)
        others = [m for m in model.children() if m is not body]
        if body is None or len(others) != 1:
            return None, None
        probe = self.prefix_ids + self.tokenize("hello") + [self.mask_id] + self.suffix_ids
        if not self._check_split(body, others[0], model, probe):
            return None, None
        return body, others[0]

    def _row(self, text: str, n_masks: int) -> tuple[list[int], int]:
        """Ids of ``text`` with ``n_masks`` masks at the marker (or the end); first mask's index."""
        if text.count(MASK_MARKER) > 1:
            raise PromptscoutError(f"a masked-LM prompt has at most one {MASK_MARKER}: {text!r}")
        left, _, right = text.partition(MASK_MARKER)
        left_ids, right_ids = self.tokenize(left), self.tokenize(right)
        room = self.max_length - len(self.prefix_ids) - len(self.suffix_ids) - n_masks
        if room < 0:
            raise PromptscoutError(
                f"model '{self.name}' has a context of {self.max_length} tokens: "
                "too short for these label words"
            )
        right_ids = right_ids[:room]
        left_ids = left_ids[max(0, len(left_ids) - (room - len(right_ids))) :]
        ids = self.prefix_ids + left_ids + [self.mask_id] * n_masks + right_ids + self.suffix_ids
        return ids, len(self.prefix_ids) + len(left_ids)

    def _logits_at(
        self, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        if self._body is None:
            return self.hf_model(input_ids=ids, attention_mask=mask).logits[rows, positions]
        hidden = self._body(input_ids=ids, attention_mask=mask)[0]
        return self._head(hidden[rows, positions])

    def score_labels(self, texts: Sequence[str], label_words: Sequence[str]) -> np.ndarray:
        """Log-probability of each label word at the masks (see :class:`LanguageModel`).

        Classes whose words have the same number of tokens share one row per text.
        """
        texts, words = list(texts), list(label_words)
        rows: list[list[int]] = []
        picks: list[list[tuple[int, int, int, int]]] = []
        for i, text in enumerate(texts):
            left = text.partition(MASK_MARKER)[0]
            by_length: dict[int, list[tuple[int, list[int]]]] = {}
            for c, w in enumerate(words):
                ids = self._word_ids(left, w)
                by_length.setdefault(len(ids), []).append((c, ids))
            for n, group in by_length.items():
                row, first = self._row(text, n)
                rows.append(row)
                picks.append(
                    [(first + j, tok, i, c) for c, ids in group for j, tok in enumerate(ids)]
                )
        return self._score_rows(rows, picks, (len(texts), len(words)))

    def hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        """The final hidden state at each text's (single) mask, where the label word is
        predicted (see :class:`~promptscout.model.base.LanguageModel`)."""
        rows, positions = zip(*(self._row(t, 1) for t in texts), strict=True) if texts else ((), ())
        return self._hidden_at(list(rows), list(positions))

    def generate(
        self,
        texts: Sequence[str],
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """Masked LMs do not generate.

        Raises:
            PromptscoutError: always.
        """
        raise PromptscoutError(
            f"model '{self.name}' is a masked LM and cannot generate; use a causal LM"
        )
