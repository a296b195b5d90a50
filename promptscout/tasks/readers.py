"""Reading example files (``.tsv``, ``.csv``, ``.jsonl``) into rows, with one-line errors.

A row is (line number, input fields, raw label).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.tasks._messages import _names, _show

FORMATS = (".tsv", ".csv", ".jsonl")

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
