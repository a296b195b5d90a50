"""Tasks: the labelled examples prompts are scored on, their loaders and the bundled data sets.

A :class:`Task` is plain, picklable data (no torch), so it can travel to evaluator workers.
:func:`load_task` reads a bundled few-shot set or a folder of ``train``/``dev``/``test`` files.

Example:
    >>> task = load_task("sst-2", seed=42)
    >>> len(task.dev), task.classes
    (32, ('negative', 'positive'))
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError

DATA_DIR = Path(__file__).resolve().parent / "data" / "fewshot"
SPLITS = ("train", "dev", "test")
KINDS = ("classification", "generation")
BUNDLED_SEEDS = (13, 21, 42, 87, 100)
FORMATS = (".tsv", ".csv", ".jsonl")
_TASK_JSON_KEYS = ("name", "kind", "classes", "label_words")
_ALIASES = {"sst2": "sst-2", "sst5": "sst-5", "ag_news": "agnews", "ag-news": "agnews"}
_INT = re.compile(r"[+-]?\d+")


def _show(value: object, limit: int = 60) -> str:
    """Quote a user value for a one-line message (repr escapes newlines and tabs)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(items: Sequence[str], limit: int = 12) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


@dataclass(frozen=True)
class Example:
    """One labelled input.

    Attributes:
        id: Stable id ``"<split>-<row index>"`` (0-based, header excluded), e.g. ``"dev-3"``.
        fields: Input fields by name, e.g. ``{"text": "..."}``.
        label: Class index (classification) or target text (generation).
    """

    id: str
    fields: dict[str, str]
    label: int | str

    def __hash__(self) -> int:
        return hash(self.id)  # `fields` is an unhashable dict; ids are unique within a task


@dataclass(frozen=True)
class Task:
    """A named set of examples with its label space.

    Attributes:
        name: Task name, e.g. ``"sst-2"`` or the folder's name.
        kind: ``"classification"`` or ``"generation"``.
        classes: Class names in label-index order; ``()`` for generation.
        label_words: Default verbalizers, one per class, no leading space; ``()`` for generation.
        input_fields: Field names every example has, ``"text"`` first.
        train: Examples searchers may use as demonstrations.
        dev: Examples searchers are scored on.
        test: Held-out examples for the final leaderboard; may be empty.
        source: Where the data came from (``"bundled:sst-2/16-42"`` or a folder); informative.

    Raises:
        PromptscoutError: If kind, classes, label words or labels are inconsistent.
    """

    name: str
    kind: str
    classes: tuple[str, ...]
    label_words: tuple[str, ...]
    input_fields: tuple[str, ...]
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # Accept lists from programmatic callers but store tuples, so the task stays hashable.
        for name in ("classes", "label_words", "input_fields", *SPLITS):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        where = f"task {self.name!r}" + (f" ({self.source})" if self.source else "")
        if self.kind not in KINDS:
            raise PromptscoutError(f"{where}: kind {_show(self.kind)} is not one of {KINDS}")
        if self.kind == "generation" and (self.classes or self.label_words):
            raise PromptscoutError(f"{where}: a generation task has no classes or label words")
        if self.kind == "classification":
            _check_label_space(where, self.classes, self.label_words)
        n, index = len(self.classes), {}
        for split in SPLITS:
            for ex in getattr(self, split):
                if ex.id in index:
                    raise PromptscoutError(f"{where}: example id {ex.id!r} occurs twice")
                index[ex.id] = (split, ex)
                if n and (type(ex.label) is not int or not 0 <= ex.label < n):
                    bad = f"is not a class index 0..{n - 1}"
                elif not n and not isinstance(ex.label, str):
                    bad = "is not a target text"
                else:
                    continue
                raise PromptscoutError(f"{where}: {ex.id} label {_show(ex.label)} {bad}")
        object.__setattr__(self, "_index", index)  # id -> (split, example), for lookups

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for generation tasks)."""
        return len(self.classes)

    def split(self, name: str) -> tuple[Example, ...]:
        """Return split ``name`` (``"train"``, ``"dev"`` or ``"test"``).

        Raises:
            PromptscoutError: If the split name is unknown or the split has no examples.
        """
        if name not in SPLITS:
            raise PromptscoutError(f"unknown split {_show(name)}; use one of {', '.join(SPLITS)}")
        examples: tuple[Example, ...] = getattr(self, name)
        if not examples:
            others = ", ".join(s for s in SPLITS if getattr(self, s))
            raise PromptscoutError(
                f"task {self.name!r} has no {name} examples; use another split ({others}) "
                f"or a task folder with a {name} file"
            )
        return examples

    def example(self, example_id: str) -> Example:
        """Return the example with id ``example_id`` from any split (PromptscoutError if none)."""
        found = self._index.get(example_id)  # type: ignore[attr-defined]
        if found is None:
            raise PromptscoutError(f"task {self.name!r} has no example {_show(example_id)}")
        return found[1]  # type: ignore[no-any-return]

    def examples(self, split: str, ids: Sequence[str] | None = None) -> tuple[Example, ...]:
        """Return all examples of ``split``, or those with the given ``ids``, in that order.

        Raises:
            PromptscoutError: If the split is unknown or empty, or an id is not in that split.
        """
        pool = self.split(split)
        if ids is None:
            return pool
        found = [self._index.get(i) for i in ids]  # type: ignore[attr-defined]
        for example_id, hit in zip(ids, found, strict=True):
            if hit is None or hit[0] != split:
                raise PromptscoutError(f"task {self.name!r} has no {split} example {example_id!r}")
        return tuple(hit[1] for hit in found)


def _check_label_space(where: str, classes: Sequence[str], words: Sequence[str]) -> None:
    if not classes or len(set(classes)) != len(classes):
        raise PromptscoutError(f"{where}: classes must be distinct and non-empty: {classes}")
    if words and len(words) != len(classes):
        raise PromptscoutError(
            f"{where}: {len(words)} label words ({_names(words)}) for {len(classes)} classes "
            f"({_names(classes)}); give one word per class, in class order"
        )
    stripped = [w.strip() if isinstance(w, str) else w for w in words]
    if not all(isinstance(w, str) and w for w in stripped) or len(set(stripped)) != len(words):
        raise PromptscoutError(f"{where}: label words must be distinct and non-empty: {words}")


@dataclass(frozen=True)
class BundledTask:
    """Metadata of a bundled few-shot set."""

    classes: tuple[str, ...]
    label_words: tuple[str, ...]
    folder: Path
    has_test: bool = True


# Class words from data/fewshot/README.md; they double as the default label words.
_BUNDLED_CLASSES = {
    "sst-2": "negative positive",
    "mr": "negative positive",
    "sst-5": "terrible bad okay good great",
    "agnews": "World Sports Business Tech",
    "yahoo": "culture science health education computer sports business music family politics",
    "dbpedia": "Company Education Artist Sports Office Transportation Building Natural Village "
    "Animal Plant Album Film Written",
}
BUNDLED_TASKS: dict[str, BundledTask] = {
    name: BundledTask(
        tuple(words.split()), tuple(words.split()), DATA_DIR / name, name != "dbpedia"
    )
    for name, words in _BUNDLED_CLASSES.items()
}

# ---------------------------------------------------------------------------------------------
# Reading files. A row is (line number, input fields, raw label).

_Row = tuple[int, dict[str, str], Any]


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # spreadsheets write a BOM
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        msg = f"{path}:{line}: not UTF-8 text (byte {err.start}); save it as UTF-8"
        raise PromptscoutError(msg) from None


def _table_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    tsv = path.suffix == ".tsv"
    quoting = csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL  # TSV texts hold raw quotes
    delimiter = "\t" if tsv else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header: list[str] = []
    end = 0
    try:
        for cells in reader:
            line, end = end + 1, reader.line_num  # a quoted CSV text may span several lines
            if not "".join(cells).strip():
                continue  # blank lines, e.g. at the end of the file
            if not header:
                header = [c.strip() for c in cells]
                if not all(header) or len(set(header)) != len(header):
                    msg = f"header names must be distinct and non-empty ({_names(header)})"
                    raise PromptscoutError(f"{path}:{line}: {msg}")
            elif len(cells) != len(header):
                hint = (
                    "a tab inside a text? replace it"
                    if tsv
                    else "quote texts with commas; close quotes"
                )
                msg = f"{len(cells)} columns, expected {len(header)} ({_names(header)}); {hint}"
                raise PromptscoutError(f"{path}:{line}: {msg}")
            else:
                yield line, dict(zip(header, cells, strict=True))
    except csv.Error as err:
        raise PromptscoutError(f"{path}:{reader.line_num}: malformed row ({err})") from None


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            msg = f"bad JSON ({err.msg}, column {err.colno}); write one JSON object per line"
            raise PromptscoutError(f"{path}:{line}: {msg}") from None
        if not isinstance(record, dict):
            raise PromptscoutError(f"{path}:{line}: expected a JSON object, got {_show(record)}")
        yield line, record


def _columns(path: Path, columns: list[str]) -> tuple[str, str, list[str]]:
    """Find the text (``text`` or ``sentence``) and label columns; the rest are extra fields."""
    lower = {c.lower(): c for c in columns}
    text, label = lower.get("text", lower.get("sentence")), lower.get("label")
    if label is None or text is None:
        missing = "label" if label is None else "text (or sentence)"
        msg = f"no {missing} column (found: {_names(columns)}); the first line must name the"
        raise PromptscoutError(f"{path}: {msg} columns, e.g. text and label")
    return text, label, [c for c in columns if c not in (text, label)]


def _to_row(
    path: Path, line: int, record: dict[str, Any], cols: tuple[str, str, list[str]]
) -> _Row:
    text, label, extra = cols
    fields: dict[str, str] = {}
    for column in (text, *extra):
        value = record[column]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # JSONL numbers in input fields are read as their text
        if not isinstance(value, str):
            raise PromptscoutError(f"{path}:{line}: {column!r} must be text, not {_show(value)}")
        fields["text" if column == text else column] = value.strip()
    raw = record[label]
    raw = raw.strip() if isinstance(raw, str) else raw
    if raw == "" or isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise PromptscoutError(f"{path}:{line}: label must be an integer or text, not {_show(raw)}")
    return line, fields, raw


def read_examples(path: str | os.PathLike[str]) -> list[_Row]:
    """Read a ``.tsv``, ``.csv`` (header row required) or ``.jsonl`` file of examples.

    Returns:
        Per example ``(line number, input fields, raw label)``: the ``text`` or ``sentence``
        column becomes field ``text``, other non-label columns keep their names, values and text
        labels are stripped of surrounding whitespace, JSONL integer labels stay ints.

    Raises:
        PromptscoutError: One line naming the file (and line) for any problem with it.
    """
    path = Path(path)
    if path.suffix not in FORMATS:
        raise PromptscoutError(f"{path}: unknown format; use one of {', '.join(FORMATS)}")
    text = _read_text(path)
    records = _jsonl_records(path, text) if path.suffix == ".jsonl" else _table_records(path, text)
    rows: list[_Row] = []
    columns: list[str] = []
    for line, record in records:
        if not columns:
            columns = list(record)
            cols = _columns(path, columns)
        if set(record) != set(columns):
            msg = f"keys ({_names(list(record))}) differ from the first line's ({_names(columns)})"
            raise PromptscoutError(f"{path}:{line}: {msg}; give every line the same keys")
        rows.append(_to_row(path, line, record, cols))
    if not rows:
        raise PromptscoutError(f"{path}: no examples; add a header row and one example per line")
    return rows


# ---------------------------------------------------------------------------------------------
# Building tasks. `files` maps each split present to (path, rows).

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


@functools.lru_cache(maxsize=32)
def _bundled_split(path: Path, split: str) -> tuple[Example, ...]:
    # Bundled files never change and hold class indices: build each split once per process
    # (yahoo's test file, shared by all seeds, has 60,000 rows). Task checks the label range.
    rows = read_examples(path)
    return tuple(
        Example(f"{split}-{i}", fields, int(raw)) for i, (_, fields, raw) in enumerate(rows)
    )


@functools.lru_cache(maxsize=32)
def _load_bundled(name: str, seed: int, words: Any, classes: Any) -> Task:
    meta = BUNDLED_TASKS[name]
    if classes is not None and len(classes) != len(meta.classes):
        msg = f"{len(meta.classes)} classes ({_names(meta.classes)}), not {len(classes)}"
        raise PromptscoutError(f"task {name!r} has {msg}; give one name per class")
    train, dev = (_bundled_split(meta.folder / f"16-{seed}" / f"{s}.tsv", s) for s in SPLITS[:2])
    test = _bundled_split(meta.folder / "test.tsv", "test") if meta.has_test else ()
    words = meta.label_words if words is None else words
    splits, source = (train, dev, test), f"bundled:{name}/16-{seed}"
    return Task(name, "classification", classes or meta.classes, words, ("text",), *splits, source)


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


def load_task(
    spec: str | os.PathLike[str],
    *,
    seed: int = 42,
    label_words: Sequence[str] | None = None,
    kind: str | None = None,
    classes: Sequence[str] | None = None,
) -> Task:
    """Load a bundled few-shot set or a task folder.

    Args:
        spec: A bundled name (``sst-2``, ``mr``, ``sst-5``, ``agnews``, ``yahoo``, ``dbpedia``;
            case-insensitive; ``sst2`` works too) or a folder with ``train``, ``dev`` and
            optionally ``test`` files (``.tsv``, ``.csv`` or ``.jsonl``; columns ``text`` or
            ``sentence``, ``label``, and any extra input fields) and an optional ``task.json``
            (keys ``name``, ``kind``, ``classes``, ``label_words``). A folder named like a
            bundled set is read when written as a path, e.g. ``./sst-2``.
        seed: Which bundled 16-shot split to use (13, 21, 42, 87 or 100); ignored for folders.
        label_words: Default verbalizers, one per class (override the task's own).
        kind: For folders, ``"classification"`` or ``"generation"``. Default: ``task.json``'s,
            else classification when every label is an integer, generation otherwise.
        classes: Class names in label-index order (override ``task.json``'s). Labels that are
            all class names map by name; otherwise integer labels are class indices.

    Returns:
        The task. Bundled tasks are cached per process, so loading one again is free.

    Raises:
        PromptscoutError: One line naming the file (and line) and the fix for any problem.
    """
    text = os.fspath(spec)
    words = _str_tuple("load_task", "label_words", label_words)
    names = _str_tuple("load_task", "classes", classes)
    if kind is not None and kind not in KINDS:
        raise PromptscoutError(f"kind {_show(kind)} is not one of {', '.join(KINDS)}")
    key = _ALIASES.get(text.strip().lower(), text.strip().lower())
    if key in BUNDLED_TASKS and not any(c in text for c in "/\\") and not text.startswith("."):
        if isinstance(seed, bool) or seed not in BUNDLED_SEEDS:
            seeds = ", ".join(map(str, BUNDLED_SEEDS))
            raise PromptscoutError(f"task {key!r} has no split seed {_show(seed)}; use {seeds}")
        return _load_bundled(key, seed, words, names)
    folder = Path(text).expanduser()
    if folder.is_dir():
        return _load_folder(folder, words, kind, names)
    if folder.is_file():
        raise PromptscoutError(f"{folder} is a file; give the folder holding train/dev/test files")
    raise PromptscoutError(
        f"unknown task {text!r}: not a bundled task ({', '.join(BUNDLED_TASKS)}) and no such "
        "folder; a folder with train, dev and test files (.tsv, .csv or .jsonl) works too"
    )
