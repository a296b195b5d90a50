"""Task folders: ``train``/``dev``/``test`` files plus an optional ``task.json``, built into a Task.

``files`` maps each split present to (path, rows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.tasks._messages import _names, _show
from promptscout.tasks.readers import FORMATS, _read_text, _Row, read_examples
from promptscout.tasks.types import KINDS, SPLITS, Example, Task

_TASK_JSON_KEYS = ("name", "kind", "classes", "label_words")
_INT = re.compile(r"[+-]?\d+")

_Files = dict[str, tuple[Path, list[_Row]]]
_Convert = Callable[[Path, int, Any], "int | str"]


def _label_space(
    files: _Files, kind: str | None, classes: tuple[str, ...] | None
) -> tuple[str, tuple[str, ...], _Convert]:
    """Decide kind and classes from the raw labels; return them with a label converter."""
    raws = [raw for _, rows in files.values() for _, _, raw in rows]
    all_int = all(isinstance(r, int) or _INT.fullmatch(r) for r in raws)
    kind = kind or ("classification" if classes or all_int else "generation")
    if kind == "generation":
        if classes:
            raise PromptscoutError("a generation task has no classes; drop 'classes' or the kind")
        return kind, (), lambda path, line, raw: str(raw)
    if classes is None:  # integer labels are indices 0..max; text labels name classes, sorted
        top = max(int(r) for r in raws) if all_int else 0
        if top >= 1000:  # numeric targets (e.g. arithmetic answers) are not class indices
            msg = f"labels are numbers up to {top}; if they are target texts, add a task.json"
            raise PromptscoutError(f"{files['train'][0].parent}: {msg} with kind generation")
        classes = (
            tuple(map(str, range(max(top, 0) + 1)))
            if all_int
            else tuple(sorted({str(r) for r in raws}))
        )
    lookup = {c: i for i, c in enumerate(classes)}
    by_name = all(str(r) in lookup for r in raws)  # e.g. star ratings "1".."5" as class names

    def convert(path: Path, line: int, raw: Any) -> int:
        if by_name:
            return lookup[str(raw)]
        if not (isinstance(raw, int) or _INT.fullmatch(raw)):
            msg = f"label {_show(raw)} is neither a class ({_names(classes)}) nor a class index"
            raise PromptscoutError(f"{path}:{line}: {msg}; fix the label or the classes")
        if not 0 <= int(raw) < len(classes):
            msg = f"label {int(raw)} is out of range for {len(classes)} classes"
            span = f"({_names(classes)}); labels are 0..{len(classes) - 1}"
            raise PromptscoutError(f"{path}:{line}: {msg} {span}")
        return int(raw)

    return kind, classes, convert


def _make_task(
    name: str, files: _Files, kind: str | None, classes: Any, words: Any, source: str
) -> Task:
    kind, classes, convert = _label_space(files, kind, classes)
    train_path, train_rows = files["train"]
    input_fields = tuple(train_rows[0][1])
    splits: dict[str, tuple[Example, ...]] = {"test": ()}
    for split, (path, rows) in files.items():
        if set(rows[0][1]) != set(input_fields):
            msg = f"input fields ({_names(list(rows[0][1]))}) differ from {train_path.name}'s"
            raise PromptscoutError(f"{path}: {msg} ({_names(input_fields)}); use the same columns")
        splits[split] = tuple(
            Example(f"{split}-{i}", fields, convert(path, line, raw))
            for i, (line, fields, raw) in enumerate(rows)
        )
    words = classes if words is None else words  # class names are the natural default words
    return Task(name, kind, classes, words, input_fields, *(splits[s] for s in SPLITS), source)


def _str_tuple(where: str, key: str, value: Any) -> tuple[str, ...] | None:
    if value is not None and (isinstance(value, str) or not all(isinstance(v, str) for v in value)):
        raise PromptscoutError(f"{where}: {key} must be a list of strings, not {_show(value)}")
    return None if value is None else tuple(value)


def _read_task_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise PromptscoutError(f"{path}:{err.lineno}: bad JSON ({err.msg})") from None
    if not isinstance(meta, dict):
        raise PromptscoutError(f'{path}: expected a JSON object like {{"kind": "generation"}}')
    for key, value in meta.items():
        if key not in _TASK_JSON_KEYS:
            raise PromptscoutError(f"{path}: unknown key {key!r}; use {_names(_TASK_JSON_KEYS)}")
        if (key == "kind" and value not in KINDS) or (key == "name" and not isinstance(value, str)):
            raise PromptscoutError(f"{path}: bad {key} {_show(value)}; see the load_task docs")
        if key in ("classes", "label_words"):
            meta[key] = _str_tuple(str(path), key, value)
    return meta


def _load_folder(folder: Path, words: Any, kind: str | None, classes: Any) -> Task:
    has_meta = (folder / "task.json").is_file()
    meta = _read_task_json(folder / "task.json") if has_meta else {}
    files: _Files = {}
    for split in SPLITS:
        found = [
            folder / f"{split}{ext}" for ext in FORMATS if (folder / f"{split}{ext}").is_file()
        ]
        if len(found) > 1:
            names = " and ".join(p.name for p in found)
            raise PromptscoutError(f"{folder}: {names} both exist; keep one {split} file")
        if found:
            files[split] = (found[0], read_examples(found[0]))
        elif split != "test":  # test is optional; Task.split("test") explains if it is used
            msg = f"add {split}.tsv, {split}.csv or {split}.jsonl with columns text and label"
            raise PromptscoutError(f"{folder}: no {split} file; {msg}")
    classes = classes if classes is not None else meta.get("classes")
    words = words if words is not None else meta.get("label_words")
    name = meta.get("name") or folder.resolve().name
    return _make_task(name, files, kind or meta.get("kind"), classes, words, str(folder))
