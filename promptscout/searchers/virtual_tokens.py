"""Where learned virtual tokens start: the embeddings of a text's tokens, of common tokens drawn
at random, or noise of the embeddings' own scale.

Prompt tuning (``soft``) and the PEFT family's prompt-learning methods (``peft``) start their
vectors here, so the same ``init`` options mean the same start in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from promptscout.errors import PromptscoutError
from promptscout.soft_tensors import INIT_MODES

# Token ids sampled by "vocab" initialisation: BPE vocabularies list merges by frequency, so the
# first ids are common words rather than rare fragments.
_COMMON_IDS = 5000


def init_ids(model: Any, n: int, mode: str, text: str, seed: int) -> list[int]:
    """The ``n`` token ids whose embeddings start the vectors: ``text``'s first tokens, the rest
    (all of them with ``mode = "vocab"``) common tokens drawn with ``seed``."""
    if mode not in ("text", "vocab"):
        raise PromptscoutError(f"token ids start init 'text' or 'vocab', not {mode!r}")
    ids = model.tokenize(text)[:n] if mode == "text" else []
    common = min(_COMMON_IDS, int(model.input_embeddings().shape[0]))
    rng = np.random.default_rng(seed)
    return ids + [int(i) for i in rng.integers(0, common, size=n - len(ids))]


def init_prefix(model: Any, n: int, mode: str, text: str, seed: int) -> np.ndarray:
    """``n`` starting vectors, float32 ``[n, hidden]``.

    Args:
        model: a causal LM.
        n: number of vectors.
        mode: ``"text"`` (the embeddings of ``text``'s first ``n`` tokens, the rest sampled as
            ``"vocab"``), ``"vocab"`` (embeddings of common tokens drawn at random) or
            ``"random"`` (normal with the embedding matrix's own standard deviation).
        text: the initialisation text for ``"text"``.
        seed: the random seed.
    """
    if mode not in INIT_MODES:
        raise PromptscoutError(f"soft init must be one of {', '.join(INIT_MODES)}, got {mode!r}")
    weights = model.input_embeddings().detach().float().cpu()
    if mode == "random":
        std = float(weights.std())
        rng = np.random.default_rng(seed)
        return rng.normal(0.0, std, size=(n, weights.shape[1])).astype(np.float32)
    ids = init_ids(model, n, mode, text, seed)
    return weights[torch.tensor(ids, dtype=torch.long)].numpy().copy()
