"""A cross-fitted committee of PEFT adapters as plain data: one bundle, one prompt.

The ``peft`` searcher with ``cross_fit`` trains each member on the training examples and on the
search examples outside its own fold, so no member may score the examples it learned from. The
committee therefore travels as a single tensor bundle that names, for each member, the examples
it held out; an evaluator scores an example with the members that held it out, and any other
example (held-out data, training examples) with all of them, their class probabilities averaged
(:mod:`promptscout.evaluation.committee_scoring`).

The bundle holds, for member ``j`` (from 0):

- ``"member<j>/adapter_config"`` and ``"member<j>/adapter.<key>"``: the member's adapter
  bundle (:mod:`promptscout.adapters`) under the member's prefix;
- ``"member<j>/held_out"``: the ids of the examples it never trained on, as the uint8 bytes of
  their JSON list, so that the digest covers them.

:func:`write_folder` writes it as one PEFT adapter folder per member (``member-<j>``) and a
``committee.json`` naming what each held out; :func:`read_folder` reads it back.

Example:
    >>> import numpy as np
    >>> from promptscout.adapters import adapter_bundle
    >>> one = adapter_bundle({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2},
    ...                      {"prompt_embeddings": np.zeros((2, 4), np.float32)})
    >>> bundle = committee_bundle([one, one], [["dev-0"], ["dev-1"]])
    >>> is_committee(bundle), [held for _, held in committee_members(bundle)]
    (True, [('dev-0',), ('dev-1',)])
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from promptscout.adapters import check_adapter
from promptscout.adapters import read_folder as read_adapter_folder
from promptscout.adapters import write_folder as write_adapter_folder
from promptscout.errors import PromptscoutError

HELD_OUT = "held_out"
COMMITTEE_FILE = "committee.json"
_KEY = re.compile(r"member(\d+)/(.+)")


def member_prefix(j: int) -> str:
    return f"member{j}/"


def is_committee(bundle: Mapping[str, np.ndarray]) -> bool:
    """Whether a tensor bundle is a committee of adapters (its keys are members')."""
    return bool(bundle) and all(_KEY.fullmatch(k) for k in bundle)


def committee_bundle(
    members: Sequence[Mapping[str, np.ndarray]], held_out: Sequence[Sequence[str]]
) -> dict[str, np.ndarray]:
    """The bundle of adapter bundles ``members``, member ``j`` having held out ``held_out[j]``."""
    if len(members) != len(held_out) or len(members) < 2:
        raise PromptscoutError("a committee bundle needs 2 or more members, each with held_out")
    bundle: dict[str, np.ndarray] = {}
    for j, (member, held) in enumerate(zip(members, held_out, strict=True)):
        prefix = member_prefix(j)
        bundle.update({prefix + k: v for k, v in check_adapter(member).items()})
        data = json.dumps([str(i) for i in held]).encode("utf-8")
        bundle[prefix + HELD_OUT] = np.frombuffer(data, dtype=np.uint8).copy()
    return bundle


def committee_members(bundle: Mapping[str, np.ndarray]) -> list[tuple[dict, tuple[str, ...]]]:
    """Each member's validated adapter bundle and the ids it held out, in member order.

    Raises:
        PromptscoutError: a key is not a member's, members are missing or fewer than 2, a
            member's adapter is malformed, or its held-out ids are not a JSON list of strings.
    """
    parts: dict[int, dict[str, np.ndarray]] = {}
    for key, value in bundle.items():
        match = _KEY.fullmatch(key)
        if match is None:
            raise PromptscoutError(f"a committee bundle holds only members' tensors, got {key!r}")
        parts.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if sorted(parts) != list(range(len(parts))) or len(parts) < 2:
        raise PromptscoutError(f"a committee bundle needs members 0..n-1, n >= 2: {sorted(parts)}")
    out = []
    for j in range(len(parts)):
        member = dict(parts[j])
        raw = member.pop(HELD_OUT, None)
        try:
            held = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
        except (TypeError, UnicodeDecodeError, ValueError):
            held = None
        if not isinstance(held, list) or not all(isinstance(i, str) for i in held):
            raise PromptscoutError(f"committee member {j}: its held_out is not a list of ids")
        out.append((check_adapter(member), tuple(held)))
    return out


def check_committee(bundle: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A validated copy of a committee bundle (see :func:`committee_members`)."""
    members = committee_members(bundle)
    return committee_bundle([m for m, _ in members], [held for _, held in members])


# -- folders --------------------------------------------------------------------------------


def write_folder(bundle: Mapping[str, np.ndarray], folder: str | Path) -> Path:
    """Write a committee as ``member-<j>`` PEFT adapter folders and ``committee.json`` (each
    member's folder and held-out ids, and how the committee scores); returns the folder."""
    folder = Path(folder)
    members = committee_members(bundle)
    listing = []
    for j, (adapter, held) in enumerate(members):
        write_adapter_folder(adapter, folder / f"member-{j}")
        listing.append({"folder": f"member-{j}", "held_out": list(held)})
    note = {
        "members": listing,
        "scoring": "an example a member held out is scored by the members that held it out, "
        "any other example by all; their class probabilities are averaged",
    }
    (folder / COMMITTEE_FILE).write_text(json.dumps(note, indent=2) + "\n")
    return folder


def is_committee_folder(folder: str | Path) -> bool:
    return (Path(folder) / COMMITTEE_FILE).exists()


def read_folder(folder: str | Path) -> dict[str, np.ndarray]:
    """The bundle of a folder :func:`write_folder` wrote.

    Raises:
        PromptscoutError: ``committee.json`` or a member's folder is missing or unreadable.
    """
    folder = Path(folder)
    try:
        note = json.loads((folder / COMMITTEE_FILE).read_text(encoding="utf-8"))
        listing = [(str(m["folder"]), list(m["held_out"])) for m in note["members"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PromptscoutError(f"cannot read the committee folder {folder}: {exc}") from None
    members = [read_adapter_folder(folder / name) for name, _ in listing]
    return committee_bundle(members, [held for _, held in listing])
