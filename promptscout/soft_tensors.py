"""Soft-prompt tensors as plain data: digests, bytes, and the file written beside an export.

A soft prompt is a :class:`~promptscout.prompts.Prompt` whose ``soft`` field holds the digest of
a small bundle of named float32 NumPy arrays:

- ``"prefix"``: ``[n, hidden]`` vectors placed before the rendered text's embeddings (after the
  tokenizer's BOS, if it adds one);
- ``"final_norm"`` (parametric mode only): ``[hidden]`` weights that replace the model's final
  norm weights while this prompt is scored.

The digest covers names, shapes, dtypes and bytes, so equal digests mean equal tensors. Bundles
travel as plain NumPy (work units, the campaign store's ``soft_tensors`` table) and are written
as safetensors (``<export stem>.soft.safetensors``, tensor names ``<digest>.<name>``).

Example:
    >>> import numpy as np
    >>> tensors = {"prefix": np.zeros((2, 4), np.float32)}
    >>> digest = tensors_digest(tensors)
    >>> decode_tensors(encode_tensors(tensors))["prefix"].shape
    (2, 4)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from promptscout.errors import PromptscoutError

PREFIX = "prefix"
FINAL_NORM = "final_norm"
TENSOR_NAMES = (PREFIX, FINAL_NORM)
EXPORT_SUFFIX = ".soft.safetensors"
INIT_MODES = ("text", "vocab", "random")
PARAMETRIC_MODES = ("", "final_norm")

SoftTensors = Mapping[str, np.ndarray]
SoftResolver = Callable[[str], "SoftTensors | None"]
"""Digest -> tensors, or None when unknown (evaluators fail such a candidate with an error)."""


def check_tensors(tensors: SoftTensors) -> dict[str, np.ndarray]:
    """Validated float32, C-contiguous copies of a bundle; raises on a malformed one."""
    unknown = sorted(set(tensors) - set(TENSOR_NAMES))
    if unknown or PREFIX not in tensors:
        raise PromptscoutError(
            f"soft-prompt tensors must be {{'prefix'[, 'final_norm']}}, got {sorted(tensors)}"
        )
    out = {
        k: np.ascontiguousarray(tensors[k], dtype=np.float32) for k in TENSOR_NAMES if k in tensors
    }
    if out[PREFIX].ndim != 2:
        raise PromptscoutError(f"soft prefix must be [n, hidden], got shape {out[PREFIX].shape}")
    if FINAL_NORM in out and out[FINAL_NORM].shape != (out[PREFIX].shape[1],):
        raise PromptscoutError(
            f"final_norm must be [hidden] = [{out[PREFIX].shape[1]}], got {out[FINAL_NORM].shape}"
        )
    if not all(np.isfinite(v).all() for v in out.values()):
        raise PromptscoutError("soft-prompt tensors contain NaN or infinite values")
    return out


def pack_array(value: np.ndarray) -> dict[str, Any]:
    """A float32 array as JSON-ready data (base64 bytes + shape), exact to the bit."""
    import base64

    value = np.ascontiguousarray(value, dtype=np.float32)
    return {"shape": list(value.shape), "b64": base64.b64encode(value.tobytes()).decode("ascii")}


def unpack_array(data: Mapping[str, Any]) -> np.ndarray:
    """The array :func:`pack_array` packed."""
    import base64

    raw = base64.b64decode(data["b64"])
    return np.frombuffer(raw, dtype=np.float32).reshape(data["shape"]).copy()


def tensors_digest(tensors: SoftTensors) -> str:
    """A 32-hex-digit content hash of a bundle (names, shapes, dtypes and bytes)."""
    clean = check_tensors(tensors)
    h = hashlib.sha256()
    for name in sorted(clean):
        value = clean[name]
        h.update(json.dumps([name, list(value.shape), value.dtype.str]).encode())
        h.update(value.tobytes())
    return h.hexdigest()[:32]


def encode_tensors(tensors: SoftTensors) -> bytes:
    """A bundle as safetensors bytes (what the store keeps)."""
    from safetensors.numpy import save

    return save(check_tensors(tensors))


def decode_tensors(data: bytes) -> dict[str, np.ndarray]:
    """The bundle :func:`encode_tensors` wrote."""
    from safetensors.numpy import load

    return check_tensors(load(data))


# -- exports --------------------------------------------------------------------------------


def soft_digests(payload: Any) -> list[str]:
    """Every ``soft`` digest of the prompts in an export payload (any nesting), in order."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("soft"), str) and node["soft"] and "template" in node:
                yield node["soft"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return list(dict.fromkeys(walk(payload)))


def export_tensor_path(export_path: str | Path) -> Path:
    """``runs/x.json`` -> ``runs/x.soft.safetensors``."""
    path = Path(export_path)
    return path.with_name(path.stem + EXPORT_SUFFIX)


def write_export_tensors(
    payload: dict[str, Any], export_path: str | Path, resolve: SoftResolver
) -> Path | None:
    """Write the tensors of the payload's soft prompts beside the export JSON.

    Sets ``payload["soft_tensors"]`` to the file's name (relative to the JSON), or removes it when
    the payload has no soft prompt. Returns the file written, or None.
    """
    from safetensors.numpy import save_file

    digests = soft_digests(payload)
    payload.pop("soft_tensors", None)
    if not digests:
        return None
    flat: dict[str, np.ndarray] = {}
    for digest in digests:
        tensors = resolve(digest)
        if tensors is None:
            raise PromptscoutError(f"soft prompt {digest} has no stored tensors; cannot export it")
        for name, value in check_tensors(tensors).items():
            flat[f"{digest}.{name}"] = value
    path = export_tensor_path(export_path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(flat, str(tmp), metadata={"format": "promptscout-soft/1"})
    tmp.replace(path)
    payload["soft_tensors"] = path.name
    return path


def load_export_tensors(export_path: str | Path, payload: Mapping[str, Any]) -> SoftResolver:
    """A resolver over the tensors file an export names (digests are checked on load)."""
    from safetensors.numpy import load_file

    name = payload.get("soft_tensors")
    if not name:
        return lambda digest: None
    path = Path(export_path).parent / str(name)
    try:
        flat = load_file(str(path))
    except Exception as exc:
        raise PromptscoutError(
            f"cannot read the soft-prompt tensors {path} named by {export_path}: {exc}"
        ) from None
    bundles: dict[str, dict[str, np.ndarray]] = {}
    for key, value in flat.items():
        digest, _, tensor = key.partition(".")
        bundles.setdefault(digest, {})[tensor] = value
    for digest, tensors in bundles.items():
        if tensors_digest(tensors) != digest:
            raise PromptscoutError(f"{path}: tensors of soft prompt {digest} do not match it")
    return bundles.get
