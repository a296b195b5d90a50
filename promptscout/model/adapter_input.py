"""Scoring a causal LM with a PEFT adapter (:mod:`promptscout.adapters`), each method through
the cheapest exact path rather than PEFT's own forward:

- prompt tuning and P-tuning: at inference both are virtual tokens' input embeddings (PEFT's
  saved ``prompt_embeddings``), placed before everything the tokenizer adds, as PEFT places
  them; scored like a soft prompt (:func:`promptscout.model.soft_input.label_log_probs`);
- prefix tuning: the learned keys and values are a key/value prefix every sequence reads, so
  the shared-prefix engine runs the rows after it (:meth:`CausalLM.score_labels_kv`);
- LoRA: the adapter merged into a copy of the weights (by PEFT's own merge), scored by the
  engine like the base model; the last merged copy is kept, since a campaign scores one
  candidate over many batches.

The scores equal what ``PeftModel.from_pretrained(base, folder)`` computes (tests compare).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from promptscout.adapters import (
    EMBEDDING_TYPES,
    PROMPT_EMBEDDINGS,
    adapter_config,
    adapter_weights,
    check_adapter,
)
from promptscout.errors import PromptscoutError
from promptscout.model.kv_prefix import kv_shape, peft_prefix_to_kv
from promptscout.model.soft_input import score_vectors, soft_parameters
from promptscout.soft_tensors import PREFIX

_COUNTERS = ("tokens_forwarded", "tokens_computed", "flops")


def score_adapter(
    model: Any, texts: Sequence[str], label_words: Sequence[str], bundle: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Class log-probabilities ``[len(texts), len(label_words)]`` (float64) of a causal LM
    (:class:`~promptscout.model.causal.CausalLM`) with a PEFT adapter bundle.

    Raises:
        PromptscoutError: the adapter does not fit the model (another width or depth).
    """
    bundle = check_adapter(bundle)
    config, weights = adapter_config(bundle), adapter_weights(bundle)
    peft_type = config["peft_type"]
    texts, words = list(texts), list(label_words)
    if peft_type == "LORA":
        return _score_merged(model, texts, words, bundle)
    prefix = _prompt_embeddings(weights)
    if peft_type == "PREFIX_TUNING":
        layers, heads, dim = kv_shape(model.hf_model.config)
        kv = peft_prefix_to_kv(prefix, layers=layers, kv_heads=heads, head_dim=dim)
        return model.score_labels_kv(texts, words, torch.from_numpy(kv).to(model.device))
    if peft_type not in EMBEDDING_TYPES:
        raise PromptscoutError(f"adapters of type {peft_type} cannot be scored")
    # At inference the virtual tokens are a soft prompt's vectors, placed before the BOS.
    vectors = soft_parameters(model, {PREFIX: prefix})[PREFIX]
    return score_vectors(model, texts, words, vectors, before_bos=True)


def _prompt_embeddings(weights: Mapping[str, np.ndarray]) -> np.ndarray:
    prefix = weights.get(PROMPT_EMBEDDINGS)
    if prefix is None or prefix.ndim != 2:
        raise PromptscoutError(
            f"a prompt-learning adapter needs a 2-D '{PROMPT_EMBEDDINGS}' weight; "
            f"got {sorted(weights)}"
        )
    return prefix


# LoRA configs whose update is not ``B @ A * scaling`` on every targeted weight.
_UNMERGEABLE = ("use_dora", "rank_pattern", "alpha_pattern", "layer_replication")
_LORA_SUFFIX = (".lora_A.weight", ".lora_B.weight")
_PEFT_PREFIX = "base_model.model."


def lora_deltas(bundle: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The weight update ``B @ A * scaling`` of each module a LoRA bundle adapts, by the
    module's name in the Hugging Face model (as PEFT's merge computes it).

    Raises:
        PromptscoutError: the config uses a LoRA variant this merge does not compute (DoRA,
            per-module ranks), or a module lacks its A or B.
    """
    config = adapter_config(bundle)
    unsupported = [k for k in _UNMERGEABLE if config.get(k)]
    if unsupported:
        raise PromptscoutError(f"LoRA adapters with {unsupported[0]} cannot be scored here")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scaling = alpha / (rank**0.5 if config.get("use_rslora") else rank)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in adapter_weights(bundle).items():
        suffix = next((s for s in _LORA_SUFFIX if key.endswith(s)), None)
        if suffix is None or not key.startswith(_PEFT_PREFIX):
            raise PromptscoutError(f"unexpected LoRA weight {key!r}")
        name = key[len(_PEFT_PREFIX) : -len(suffix)]
        pairs.setdefault(name, {})[suffix[6]] = value  # "A" or "B"
    deltas = {}
    for name, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise PromptscoutError(f"LoRA module {name} lacks its A or B weight")
        delta = torch.from_numpy(pair["B"]) @ torch.from_numpy(pair["A"]) * scaling
        deltas[name] = delta.T if config.get("fan_in_fan_out") else delta
    return deltas


class LoraCopy:
    """One copy of a causal LM whose weights take each LoRA adapter in turn: the adapted
    modules get ``base weight + update``, restored from the base model's own weights before the
    next adapter (exact, no drift). The copy's engine is built (and checked) once; the lean pass
    reads the weights at call time, so it sees each adapter."""

    def __init__(self, model: Any) -> None:
        self.base = model
        self.model = type(model)(
            model.name, copy.deepcopy(model.hf_model), model.tokenizer, batch_size=model.batch_size
        )
        self.digest: str | None = None
        self.adapted: list[str] = []

    def load(self, bundle: Mapping[str, np.ndarray], digest: str) -> Any:
        """The copy with ``bundle`` merged in (a no-op when it already is)."""
        if digest == self.digest:
            return self.model
        deltas = lora_deltas(bundle)
        base, target = self.base.hf_model, self.model.hf_model
        self.digest = None  # a failure below leaves the copy unusable until the next load
        with torch.no_grad():
            for name in self.adapted:
                target.get_submodule(name).weight.copy_(base.get_submodule(name).weight)
            self.adapted = []
            for name, delta in deltas.items():
                try:
                    weight = base.get_submodule(name).weight
                except AttributeError:
                    raise PromptscoutError(
                        f"the LoRA adapter does not fit model '{self.base.name}': no module {name}"
                    ) from None
                if tuple(weight.shape) != tuple(delta.shape):
                    raise PromptscoutError(
                        f"the LoRA adapter does not fit model '{self.base.name}': {name} is "
                        f"{tuple(weight.shape)}, its update {tuple(delta.shape)}"
                    )
                merged = weight.float() + delta.to(weight.device)
                target.get_submodule(name).weight.copy_(merged.to(weight.dtype))
                self.adapted.append(name)
        self.digest = digest
        return self.model


def _score_merged(
    model: Any, texts: list[str], words: list[str], bundle: dict[str, np.ndarray]
) -> np.ndarray:
    """Score with the LoRA merged into the model's LoRA copy (made on first use and kept on
    ``model``); the copy's work is added to ``model``'s counters."""
    from promptscout.soft_tensors import tensors_digest

    if getattr(model, "_lora_copy", None) is None:
        model._lora_copy = LoraCopy(model)
    merged = model._lora_copy.load(bundle, tensors_digest(bundle))
    before = [getattr(merged, c) for c in _COUNTERS]
    scores = merged.score_labels(texts, words)
    for name, start in zip(_COUNTERS, before, strict=True):
        setattr(model, name, getattr(model, name) + getattr(merged, name) - start)
    return scores
