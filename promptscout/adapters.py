"""PEFT adapters as plain data: the bundle a parametric prompt travels as, and its PEFT folder.

A prompt trained by the ``peft`` searcher (prompt tuning, prefix tuning, P-tuning, LoRA) is a
:class:`~promptscout.prompts.Prompt` whose ``soft`` field is the digest of a bundle of NumPy
arrays, like a soft prompt's (:mod:`promptscout.soft_tensors`), so it goes through the same
store table, Ray work units and export file. The bundle holds:

- ``"adapter_config"``: the adapter's PEFT config (``adapter_config.json``'s content) as the
  uint8 bytes of its JSON, so that the digest covers it (a LoRA's ``lora_alpha`` changes its
  numbers as much as its weights do);
- ``"adapter.<key>"``: each tensor of the adapter's PEFT state dict, float32, under the key
  ``adapter_model.safetensors`` uses (``prompt_embeddings`` for the prompt-learning methods, in
  their inference form; ``base_model.model.<module>.lora_A.weight`` ... for LoRA).

:func:`write_folder` writes a bundle as the folder ``PeftModel.from_pretrained(base, folder)``
loads; :func:`read_folder` reads it back.

Example:
    >>> import numpy as np
    >>> bundle = adapter_bundle({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2},
    ...                         {"prompt_embeddings": np.zeros((2, 4), np.float32)})
    >>> adapter_config(bundle)["peft_type"], adapter_weights(bundle)["prompt_embeddings"].shape
    ('PROMPT_TUNING', (2, 4))
    >>> virtual_tokens(bundle)
    2
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError

CONFIG = "adapter_config"
WEIGHT_PREFIX = "adapter."
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PROMPT_EMBEDDINGS = "prompt_embeddings"
# PEFT's names of the methods, by the names the campaign file uses.
PEFT_TYPES = {
    "prompt_tuning": "PROMPT_TUNING",
    "prefix_tuning": "PREFIX_TUNING",
    "p_tuning": "P_TUNING",
    "lora": "LORA",
}
# The methods whose learned numbers are virtual tokens' input embeddings at inference.
EMBEDDING_TYPES = ("PROMPT_TUNING", "P_TUNING")


def is_adapter(bundle: Mapping[str, np.ndarray]) -> bool:
    """Whether a tensor bundle is a PEFT adapter (it carries its config)."""
    return CONFIG in bundle


def adapter_bundle(config: Mapping[str, Any], weights: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The bundle of a PEFT config (a dict, as ``adapter_config.json`` holds) and state dict
    (names as ``adapter_model.safetensors`` holds them; torch tensors or arrays)."""
    data = json.dumps(dict(config), sort_keys=True).encode("utf-8")
    bundle = {CONFIG: np.frombuffer(data, dtype=np.uint8).copy()}
    for key, value in weights.items():
        if hasattr(value, "detach"):
            value = value.detach().float().cpu().numpy()
        # A copy: a CPU tensor's array shares its memory, and training goes on changing it.
        bundle[WEIGHT_PREFIX + key] = np.array(value, dtype=np.float32, order="C", copy=True)
    return check_adapter(bundle)


def check_adapter(bundle: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A validated copy of an adapter bundle.

    Raises:
        PromptscoutError: the config is not a PEFT config, a tensor is misnamed, or a weight is
            not finite.
    """
    strays = sorted(k for k in bundle if k != CONFIG and not k.startswith(WEIGHT_PREFIX))
    if strays:
        raise PromptscoutError(f"an adapter bundle holds only its config and weights, got {strays}")
    config = _decode_config(bundle[CONFIG])
    if config.get("peft_type") not in PEFT_TYPES.values():
        raise PromptscoutError(
            f"adapter config has no known peft_type: {config.get('peft_type')!r}"
        )
    out = {CONFIG: np.ascontiguousarray(bundle[CONFIG], dtype=np.uint8)}
    for key in sorted(k for k in bundle if k != CONFIG):
        value = np.ascontiguousarray(bundle[key], dtype=np.float32)
        if not np.isfinite(value).all():
            raise PromptscoutError(f"adapter weight {key[len(WEIGHT_PREFIX) :]} is not finite")
        out[key] = value
    if len(out) == 1:
        raise PromptscoutError("an adapter bundle must hold at least one weight")
    return out


def _decode_config(raw: np.ndarray) -> dict[str, Any]:
    try:
        config = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PromptscoutError("an adapter bundle's config is not JSON") from None
    if not isinstance(config, dict):
        raise PromptscoutError("an adapter bundle's config is not a JSON object")
    return config


def adapter_config(bundle: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The PEFT config of an adapter bundle."""
    return _decode_config(bundle[CONFIG])


def adapter_weights(bundle: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The PEFT state dict of an adapter bundle (float32 arrays by PEFT's key)."""
    n = len(WEIGHT_PREFIX)
    return {k[n:]: v for k, v in bundle.items() if k.startswith(WEIGHT_PREFIX)}


def virtual_tokens(bundle: Mapping[str, np.ndarray]) -> int:
    """How many token positions the adapter adds before each input (0 for LoRA)."""
    config = adapter_config(bundle)
    if config["peft_type"] == "LORA":
        return 0
    return int(config.get("num_virtual_tokens") or 0)


# -- PEFT folders ---------------------------------------------------------------------------


def write_folder(bundle: Mapping[str, np.ndarray], folder: str | Path) -> Path:
    """Write an adapter bundle as a PEFT adapter folder (``adapter_config.json`` and
    ``adapter_model.safetensors``); returns the folder."""
    from safetensors.numpy import save_file

    clean = check_adapter(bundle)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = adapter_config(clean)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(adapter_weights(clean), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    return folder


def read_folder(folder: str | Path) -> dict[str, np.ndarray]:
    """The bundle of a PEFT adapter folder :func:`write_folder` wrote (or PEFT saved).

    Raises:
        PromptscoutError: a file is missing or unreadable.
    """
    from safetensors.numpy import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        weights = load_file(str(folder / WEIGHTS_FILE))
    except (OSError, ValueError) as exc:
        raise PromptscoutError(f"cannot read the PEFT adapter folder {folder}: {exc}") from None
    return adapter_bundle(config, weights)
