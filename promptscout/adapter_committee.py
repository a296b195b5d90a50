"""A cross-fitted committee of PEFT adapters as plain data: one bundle, one prompt.

The ``peft`` searcher with ``cross_fit`` trains each member on the training examples and on the
search examples outside its own fold, so no member may score the examples it learned from. The
committee therefore travels as a single tensor bundle that names, for each member, the examples
it held out; an evaluator scores an example with the members that held it out, and any other
example (held-out data, training examples) with all of them, their class probabilities averaged
(:mod:`promptscout.evaluation.committee_scoring`).

Each member shows its own demonstrations (an adapter is trained with the pair it is scored
with), so an evaluator renders each member's texts with that member's pair; a member trained on
a template of its own (``template_choice = "per_member"``) is rendered with that template.

The bundle holds, for member ``j`` (from 0):

- ``"member<j>/adapter_config"`` and ``"member<j>/adapter.<key>"``: the member's adapter
  bundle (:mod:`promptscout.adapters`) under the member's prefix;
- ``"member<j>/held_out"`` and ``"member<j>/demos"``: the ids of the examples it never trained
  on and of its demonstrations, each as the uint8 bytes of their JSON list, so that the digest
  covers them.

:func:`write_folder` writes it as one PEFT adapter folder per member (``member-<j>``) and a
``committee.json`` naming what each held out and showed; :func:`read_folder` reads it back.

Example:
    >>> import numpy as np
    >>> from promptscout.adapters import adapter_bundle
    >>> one = adapter_bundle({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2},
    ...                      {"prompt_embeddings": np.zeros((2, 4), np.float32)})
    >>> bundle = committee_bundle([one, one], [["dev-0"], ["dev-1"]], [["train-0"], []])
    >>> is_committee(bundle), [(m.held_out, m.demos) for m in committee_members(bundle)]
    (True, [(('dev-0',), ('train-0',)), (('dev-1',), ())])
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from promptscout.adapters import check_adapter
from promptscout.adapters import read_folder as read_adapter_folder
from promptscout.adapters import write_folder as write_adapter_folder
from promptscout.errors import PromptscoutError

HELD_OUT = "held_out"
DEMOS = "demos"
TEMPLATE = "template"
COMMITTEE_FILE = "committee.json"
_KEY = re.compile(r"member(\d+)/(.+)")


@dataclass(frozen=True)
class Member:
    """One member of a committee: its adapter bundle, the examples it held out, its demos and
    its own template ("": the committee prompt's)."""

    adapter: dict[str, np.ndarray]
    held_out: tuple[str, ...]
    demos: tuple[str, ...]
    template: str = ""


def member_prefix(j: int) -> str:
    return f"member{j}/"


def is_committee(bundle: Mapping[str, np.ndarray]) -> bool:
    """Whether a tensor bundle is a committee of adapters (its keys are members')."""
    return bool(bundle) and all(_KEY.fullmatch(k) for k in bundle)


def committee_bundle(
    members: Sequence[Mapping[str, np.ndarray]],
    held_out: Sequence[Sequence[str]],
    demos: Sequence[Sequence[str]],
    templates: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """The bundle of adapter bundles ``members``, member ``j`` having held out ``held_out[j]``
    and shown ``demos[j]`` (and, with ``templates``, rendered with ``templates[j]``)."""
    templates = [""] * len(members) if templates is None else list(templates)
    if not len(members) == len(held_out) == len(demos) == len(templates) or len(members) < 2:
        raise PromptscoutError(
            "a committee bundle needs 2 or more members, each with held_out and demos"
        )
    return _assemble(
        [
            Member(check_adapter(m), tuple(map(str, h)), tuple(map(str, d)), str(t))
            for m, h, d, t in zip(members, held_out, demos, templates, strict=True)
        ]
    )


def _assemble(members: Sequence[Member]) -> dict[str, np.ndarray]:
    """The bundle of validated members."""
    bundle: dict[str, np.ndarray] = {}
    for j, member in enumerate(members):
        prefix = member_prefix(j)
        bundle.update({prefix + k: v for k, v in member.adapter.items()})
        bundle[prefix + HELD_OUT] = _ids_bytes(member.held_out)
        bundle[prefix + DEMOS] = _ids_bytes(member.demos)
        if member.template:
            bundle[prefix + TEMPLATE] = _json_bytes(member.template)
    return bundle


def _json_bytes(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8).copy()


def _ids_bytes(ids: Sequence[str]) -> np.ndarray:
    return _json_bytes(list(ids))


def _json_of(raw: np.ndarray | None) -> object:
    try:
        return json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (TypeError, UnicodeDecodeError, ValueError):
        return None


def _ids(raw: np.ndarray | None, j: int, name: str) -> tuple[str, ...]:
    ids = _json_of(raw)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise PromptscoutError(f"committee member {j}: its {name} is not a list of ids")
    return tuple(ids)


def _template(raw: np.ndarray | None, j: int) -> str:
    if raw is None:
        return ""
    template = _json_of(raw)
    if not isinstance(template, str) or not template:
        raise PromptscoutError(f"committee member {j}: its template is not a non-empty string")
    return template


def committee_members(bundle: Mapping[str, np.ndarray]) -> list[Member]:
    """Each member's validated adapter bundle, held-out ids, demonstrations and template, in
    order.

    Raises:
        PromptscoutError: a key is not a member's, members are missing or fewer than 2, a
            member's adapter is malformed, its ids are not a JSON list of strings, or its
            template is not a non-empty JSON string.
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
        held = _ids(member.pop(HELD_OUT, None), j, HELD_OUT)
        demos = _ids(member.pop(DEMOS, None), j, DEMOS)
        template = _template(member.pop(TEMPLATE, None), j)
        out.append(Member(check_adapter(member), held, demos, template))
    return out


def check_committee(bundle: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A validated copy of a committee bundle (see :func:`committee_members`)."""
    return _assemble(committee_members(bundle))


# -- folders --------------------------------------------------------------------------------


def write_folder(bundle: Mapping[str, np.ndarray], folder: str | Path) -> Path:
    """Write a committee as ``member-<j>`` PEFT adapter folders and ``committee.json`` (each
    member's folder, held-out ids, demonstrations and own template if any, and how the
    committee scores); returns the folder."""
    folder = Path(folder)
    listing = []
    for j, member in enumerate(committee_members(bundle)):
        write_adapter_folder(member.adapter, folder / f"member-{j}")
        entry = {
            "folder": f"member-{j}",
            "held_out": list(member.held_out),
            "demos": list(member.demos),
        }
        if member.template:
            entry[TEMPLATE] = member.template
        listing.append(entry)
    note = {
        "members": listing,
        "scoring": "each member shows its own demos (and its template, where it names one); an "
        "example a member held out is scored by the members that held it out, any other example "
        "by all; their class probabilities are averaged",
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
        listing = [
            (str(m["folder"]), list(m["held_out"]), list(m["demos"]), str(m.get(TEMPLATE, "")))
            for m in note["members"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PromptscoutError(f"cannot read the committee folder {folder}: {exc}") from None
    # An empty listing is refused below, as a committee of too few members.
    names, held, demos, templates = zip(*listing, strict=True) if listing else ((),) * 4
    members = [read_adapter_folder(folder / name) for name in names]
    return committee_bundle(members, held, demos, templates)
