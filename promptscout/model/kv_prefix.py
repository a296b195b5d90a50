"""Prefix tuning's learned keys and values, in the layout the shared-prefix engine reads.

Prefix tuning (PEFT's ``PrefixTuningConfig``) learns, for every layer of a causal LM, the keys
and values of ``n`` virtual tokens. At scoring time that is exactly a shared key/value prefix:
PEFT hands it to the model as ``past_key_values``, so every sequence attends to it before its
first real token, whose position is ``n`` (the prefix keys carry no rotary embedding of their
own; the model's positions just start after them). The shared-prefix engine already runs
continuations after cached prefixes at their absolute positions, so a learned prefix scores as
one more cached context (:meth:`CausalLM.score_labels_kv
<promptscout.model.causal.CausalLM.score_labels_kv>`), and the text's own shared prefixes still
run once.

PEFT saves the prefix as one matrix (``prompt_embeddings``, ``[n, layers * 2 * kv_heads *
head_dim]``); its ``get_prompt`` views each row as ``[layers * 2, kv_heads, head_dim]`` (layer
l's keys at index 2l, its values at 2l + 1) and, for grouped-query attention, sizes the heads by
the key/value heads (``_prepare_prompt_learning_config``). :func:`peft_prefix_to_kv` reads it
the same way into the engine's ``[layers, 2, kv_heads, n, head_dim]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError


def kv_shape(hf_config: Any) -> tuple[int, int, int]:
    """``(layers, kv_heads, head_dim)`` of a causal LM's key/value cache, as PEFT sizes a
    prefix for it: ``num_key_value_heads`` (else ``num_attention_heads``) heads of
    ``head_dim`` (else ``hidden_size // num_attention_heads``) per layer."""
    heads = hf_config.num_attention_heads
    kv_heads = getattr(hf_config, "num_key_value_heads", None) or heads
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads
    return int(hf_config.num_hidden_layers), int(kv_heads), int(head_dim)


def peft_prefix_to_kv(
    embedding: np.ndarray, *, layers: int, kv_heads: int, head_dim: int
) -> np.ndarray:
    """PEFT's saved prefix-tuning tensor as the engine's key/value prefix.

    Args:
        embedding: ``prompt_embeddings`` of a prefix-tuning adapter (as
            ``get_peft_model_state_dict`` or ``PeftModel.get_prompt_embedding_to_save`` return
            it), ``[n, layers * 2 * kv_heads * head_dim]``.
        layers, kv_heads, head_dim: the model's cache shape (:func:`kv_shape`).

    Returns:
        ``[layers, 2, kv_heads, n, head_dim]``: layer l's keys at ``[l, 0]``, values at ``[l, 1]``.

    Raises:
        PromptscoutError: the tensor is not ``[n, layers * 2 * kv_heads * head_dim]``.
    """
    embedding = np.asarray(embedding)
    width = layers * 2 * kv_heads * head_dim
    if embedding.ndim != 2 or embedding.shape[0] < 1 or embedding.shape[1] != width:
        raise PromptscoutError(
            f"a prefix-tuning tensor for {layers} layers of {kv_heads} key/value heads of size "
            f"{head_dim} is [n, {width}]; got {list(embedding.shape)}"
        )
    n = embedding.shape[0]
    # PEFT: view(n, layers * 2, heads, head_dim), permute to [layers * 2, heads, n, head_dim].
    return np.ascontiguousarray(
        embedding.reshape(n, layers, 2, kv_heads, head_dim).transpose(1, 2, 3, 0, 4)
    )


def check_kv(kv: Any, hf_config: Any) -> int:
    """The number of virtual tokens of a key/value prefix for a model with ``hf_config``.

    Raises:
        PromptscoutError: ``kv`` is not ``[layers, 2, kv_heads, n, head_dim]`` for that model.
    """
    layers, kv_heads, head_dim = kv_shape(hf_config)
    shape = tuple(kv.shape)
    if len(shape) != 5 or shape[3] < 1 or shape != (layers, 2, kv_heads, shape[3], head_dim):
        raise PromptscoutError(
            f"a key/value prefix for this model is [{layers}, 2, {kv_heads}, n, {head_dim}]; "
            f"got {list(shape)}"
        )
    return shape[3]
