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

from promptscout import adapter_committee
from promptscout.adapters import (
    check_adapter,
    is_adapter,
    read_folder,
    virtual_tokens,
    write_folder,
)
from promptscout.errors import PromptscoutError

PREFIX = "prefix"
FINAL_NORM = "final_norm"
TENSOR_NAMES = (PREFIX, FINAL_NORM)
EXPORT_SUFFIX = ".soft.safetensors"
ADAPTERS_SUFFIX = ".adapters"
INIT_MODES = ("text", "vocab", "random")
# Prompt tuning's default step (the ``soft`` searcher and ``peft``'s prompt_tuning and p_tuning):
# Adam moves every coordinate by about the step per update, and SmolLM2's embeddings have a
# standard deviation of 0.14, so 0.03 (four updates an epoch) rewrote the start within an epoch
# and collapsed on MR to one class (test 0.51); 0.003 scored best on dev on SST-2 and MR
# (benchmarks/peft_methods.py, 3 split seeds).
PROMPT_VECTOR_STEP = 0.003
PARAMETRIC_MODES = ("", "final_norm")

SoftTensors = Mapping[str, np.ndarray]
SoftResolver = Callable[[str], "SoftTensors | None"]
"""Digest -> tensors, or None when unknown (evaluators fail such a candidate with an error)."""


def check_tensors(tensors: SoftTensors) -> dict[str, np.ndarray]:
    """Validated float32, C-contiguous copies of a bundle (a PEFT adapter's bundle keeps its
    config's bytes, see :mod:`promptscout.adapters`); raises on a malformed one."""
    if is_adapter(tensors):
        return check_adapter(tensors)
    if adapter_committee.is_committee(tensors):
        return adapter_committee.check_committee(tensors)
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


def added_positions(tensors: SoftTensors) -> int:
    """Token positions a bundle adds before each input: a soft prompt's vectors, an adapter's
    virtual tokens (none for LoRA), the most a committee's member adds."""
    if adapter_committee.is_committee(tensors):
        return max(virtual_tokens(m.adapter) for m in adapter_committee.committee_members(tensors))
    return virtual_tokens(tensors) if is_adapter(tensors) else len(tensors[PREFIX])


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


def export_adapter_folder(export_path: str | Path, digest: str) -> Path:
    """``runs/x.json`` -> ``runs/x.adapters/<digest>`` (a PEFT adapter folder)."""
    path = Path(export_path)
    return path.with_name(path.stem + ADAPTERS_SUFFIX) / digest


def write_export_tensors(
    payload: dict[str, Any], export_path: str | Path, resolve: SoftResolver
) -> Path | None:
    """Write the tensors of the payload's soft prompts beside the export JSON.

    Soft prompts' tensors go into one safetensors file, named by ``payload["soft_tensors"]``
    (relative to the JSON); each PEFT adapter (:mod:`promptscout.adapters`) becomes a PEFT
    folder, and each committee of them (:mod:`promptscout.adapter_committee`) a folder of
    member folders, named by ``payload["adapters"][digest]`` with a line on loading it. Keys of
    prompts the payload does not have are removed. Returns the tensors file written, or None.
    """
    from safetensors.numpy import save_file

    payload.pop("soft_tensors", None)
    payload.pop("adapters", None)
    flat: dict[str, np.ndarray] = {}
    folders: dict[str, str] = {}
    for digest in soft_digests(payload):
        tensors = resolve(digest)
        if tensors is None:
            raise PromptscoutError(f"soft prompt {digest} has no stored tensors; cannot export it")
        if is_adapter(tensors) or adapter_committee.is_committee(tensors):
            write = write_folder if is_adapter(tensors) else adapter_committee.write_folder
            folder = write(tensors, export_adapter_folder(export_path, digest))
            folders[digest] = str(folder.relative_to(Path(export_path).parent))
            continue
        for name, value in check_tensors(tensors).items():
            flat[f"{digest}.{name}"] = value
    if folders:
        payload["adapters"] = {
            "folders": folders,
            "load": "PeftModel.from_pretrained(base_model, folder) (peft); the prompt's template "
            "and label words are read as with any prompt; a folder with committee.json holds "
            "one such folder per member, their class probabilities averaged",
        }
    if not flat:
        return None
    path = export_tensor_path(export_path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(flat, str(tmp), metadata={"format": "promptscout-soft/1"})
    tmp.replace(path)
    payload["soft_tensors"] = path.name
    return path


def load_export_tensors(export_path: str | Path, payload: Mapping[str, Any]) -> SoftResolver:
    """A resolver over the tensors file and adapter folders an export names (digests are
    checked on load: a folder edited since the export is refused)."""
    from safetensors.numpy import load_file

    bundles: dict[str, dict[str, np.ndarray]] = {}
    name = payload.get("soft_tensors")
    if name:
        path = Path(export_path).parent / str(name)
        try:
            flat = load_file(str(path))
        except Exception as exc:
            raise PromptscoutError(
                f"cannot read the soft-prompt tensors {path} named by {export_path}: {exc}"
            ) from None
        for key, value in flat.items():
            digest, _, tensor = key.partition(".")
            bundles.setdefault(digest, {})[tensor] = value
    folders = (payload.get("adapters") or {}).get("folders") or {}
    for digest, folder in folders.items():
        path = Path(export_path).parent / str(folder)
        committee = adapter_committee.is_committee_folder(path)
        bundles[digest] = (adapter_committee.read_folder if committee else read_folder)(path)
    for digest, tensors in bundles.items():
        if tensors_digest(tensors) != digest:
            raise PromptscoutError(
                f"{export_path}: the stored tensors of soft prompt {digest} do not match it"
            )
    return bundles.get
