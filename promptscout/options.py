"""Options declared once: dataclass fields with a help line, read from TOML tables with type
checks, and described as plain data (for ``promptscout plugins`` and the README's reference).

A config dataclass declares each option with :func:`option` and checks values that depend on
each other in ``__post_init__``, raising :class:`OptionError` with the key it is about:

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Budget:
    ...     examples: int = option(100, help="Examples scored on the search split.")
    ...     minutes: float | None = option(None, help="Wall-time limit.")
    ...     def __post_init__(self) -> None:
    ...         if self.examples < 1:
    ...             raise OptionError("examples", f"must be at least 1, got {self.examples}")
    >>> read_options(Budget, {"examples": 5, "minutes": 2})
    Budget(examples=5, minutes=2.0)
    >>> try:
    ...     read_options(Budget, {"examples": "5"})
    ... except OptionError as exc:
    ...     print(f"{exc.key}: {exc.problem}")
    examples: must be int, got '5'
    >>> [(d["name"], d["type"], d["default"]) for d in describe_options(Budget)]
    [('examples', 'int', 100), ('minutes', 'float', None)]

The reader knows ``str``, ``int``, ``float`` (TOML integers accepted), ``bool`` (never taken for
a number, nor a number for it), ``list[...]``, ``dict[str, ...]`` (a TOML table), ``X | None``
and ``Any``; other annotations are taken as they come. A class may list renamed options as a
``ClassVar[dict[str, str]]`` named ``renamed_options`` (old name -> new name): the old name is
then an error naming the new one and its help.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NoReturn, TypeVar, Union, get_args, get_origin, get_type_hints

from promptscout.errors import PromptscoutError

T = TypeVar("T")
_NONE = type(None)
_UNIONS = (Union, types.UnionType)


class OptionError(PromptscoutError):
    """A bad option value: ``key`` names the option (None: the table as a whole), ``problem``
    says what is wrong in words that follow the key (``must be at least 1, got 0``).

    A campaign file reports it as ``FILE:LINE: [table] key: problem``, at the key's line;
    on its own it reads ``'key' problem`` (or ``message`` when given).
    """

    def __init__(self, key: str | None, problem: str, message: str | None = None) -> None:
        self.key, self.problem = key, problem
        super().__init__(message or (f"'{key}' {problem}" if key else problem))


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    key: str | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    **kwargs: Any,
) -> Any:
    """A dataclass field with a one-line ``help`` text; a list or dict ``default`` becomes a
    ``default_factory`` (each instance gets its own copy). ``key`` is the option's name in the
    TOML table when it differs from the attribute's (stored configs keep the attribute's)."""
    if isinstance(default, (list, dict, set)):
        value, default = default, dataclasses.MISSING
        default_factory = lambda: copy.deepcopy(value)  # noqa: E731
    metadata = {"help": help, **({"key": key} if key else {})}
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata=metadata, **kwargs
    )


def require_positive(options: Any, names: Iterable[str]) -> None:
    """Raise :class:`OptionError` naming the first of ``names`` (attributes of ``options``)
    that is not a positive integer (a bool is not an integer here, as in a campaign file)."""
    for name in names:
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise OptionError(name, f"must be a positive integer, got {value!r}")


def require_non_negative(options: Any, names: Iterable[str]) -> None:
    """Raise :class:`OptionError` naming the first of ``names`` (attributes of ``options``)
    that is not a finite number of 0 or more."""
    for name in names:
        value = getattr(options, name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and value >= 0):
            raise OptionError(name, f"must be 0 or more, got {value!r}")


def option_key(f: dataclasses.Field) -> str:
    """The name of a field's option in a TOML table."""
    return f.metadata.get("key", f.name)


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def renamed_options(cls: type) -> dict[str, str]:
    """Old option name -> new one, from ``renamed_options`` of the class and its bases."""
    renamed: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        renamed.update(vars(klass).get("renamed_options", {}))
    return renamed


# -- types --------------------------------------------------------------------------------------


def _check(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether ``value`` is a ``tp``, and the value converted (an int for a float, copies of
    lists and tables)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return True, value
    if origin in _UNIONS:
        for arg in args:
            ok, converted = _check(value, arg)
            if ok:
                return True, converted
        return False, value
    if tp is _NONE or tp is None:
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    if origin is Literal:
        return value in args, value
    if tp is list or origin is list:
        if not isinstance(value, list):
            return False, value
        items = [_check(v, args[0] if args else Any) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            return False, value
        key_type, value_type = args or (Any, Any)
        items = {k: _check(v, value_type) for k, v in value.items()}
        ok = all(_check(k, key_type)[0] and good for k, (good, _) in items.items())
        return ok, {k: v for k, (_, v) in items.items()}
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value  # an annotation the reader does not know: taken as it comes


def type_text(tp: Any) -> str:
    """An annotation as the reference writes it: ``int``, ``list[str]``, ``table``,
    ``list[table]``, ``str or list[str]`` (``None`` left out: TOML cannot write it)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return "any"
    if origin in _UNIONS:
        return " or ".join(type_text(a) for a in args if a is not _NONE)
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if tp is list or origin is list:
        return f"list[{type_text(args[0])}]" if args else "list"
    if tp is dict or origin is dict:
        return "table"
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _hints(cls: type) -> dict[str, Any]:
    try:
        return get_type_hints(cls)
    except (NameError, TypeError):  # annotations that do not resolve: no type checks
        return {f.name: Any for f in dataclasses.fields(cls)}


# -- reading ------------------------------------------------------------------------------------


def read_options(cls: type[T], table: Any, *, owner: str | None = None) -> T:
    """The dataclass ``cls`` from a TOML table, checking every key and value.

    Raises :class:`OptionError` for a table that is not a table, an unknown or renamed key, a
    value of the wrong type, and what ``__post_init__`` raises (a plain
    :class:`PromptscoutError` there is about the table as a whole). ``owner`` (e.g.
    ``"searcher 'random'"``) names the table in messages read on their own.
    """
    if not isinstance(table, Mapping):
        raise OptionError(None, f"must be a table, got {type(table).__name__}")
    fields = {option_key(f): f for f in _fields(cls)}
    renamed, hints = renamed_options(cls), _hints(cls)
    prefix = f"{owner}: " if owner else ""
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields and renamed.get(key) in fields:
            new = fields[renamed[key]]
            hint = new.metadata.get("help", "").split(" (")[0].rstrip(".")
            problem = f"was renamed to '{option_key(new)}'" + (f" ({hint})" if hint else "")
            raise OptionError(key, problem, f"{prefix}'{key}' {problem}")
        if key not in fields:
            known = ", ".join(sorted(fields))
            if owner:
                raise OptionError(
                    key,
                    f"unknown option of {owner}; options: {known}",
                    f"{owner} has no option '{key}'; options: {known}",
                )
            raise OptionError(key, f"unknown key; known keys: {known}")
        tp = hints.get(fields[key].name, Any)
        ok, converted = _check(value, tp)
        if not ok:
            problem = f"must be {type_text(tp)}, got {value!r}"
            raise OptionError(key, problem, f"{prefix}'{key}' {problem}")
        kwargs[fields[key].name] = converted
    try:
        return cls(**kwargs)
    except OptionError as exc:
        raise OptionError(exc.key, exc.problem, f"{prefix}{exc}") from None
    except PromptscoutError as exc:
        raise OptionError(None, str(exc), f"{prefix}{exc}") from None
    except (TypeError, ValueError) as exc:  # e.g. a plug-in's required option left out
        raise OptionError(None, str(exc), f"{prefix}{exc}") from None


class TomlFile:
    """A TOML text's tables read with :func:`read_options`; every problem is one
    :class:`PromptscoutError` line ``FILE:LINE: [table] key: problem``, at the key's line (else
    the table's)."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()

    def line(self, table: str, key: str | None = None, index: int = 0) -> int | None:
        """The line of ``key`` in the ``index``-th ``[table]`` (or ``[[table]]``), else of the
        table's header; None when the text has no such table."""
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        starts = [i for i, line in enumerate(self.lines) if header.match(line)]
        if index >= len(starts):
            return None
        start = starts[index]
        if key is None:
            return start + 1
        key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if key_re.match(self.lines[i]):
                return i + 1
        return start + 1

    def fail(self, table: str, key: str | None, problem: str, index: int = 0) -> NoReturn:
        line = self.line(table, key, index)
        where = f"{self.source}:{line}" if line else self.source
        what = f"[{table}] {key}" if key else f"[{table}]"
        raise PromptscoutError(f"{where}: {what}: {problem}")

    def read(self, table: str, cls: type[T], data: Any, index: int = 0) -> T:
        """``cls`` from the ``index``-th ``[table]``, whose parsed content is ``data``."""
        try:
            return read_options(cls, data)
        except OptionError as exc:
            self.fail(table, exc.key, exc.problem, index)


def upgrade_options(cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with renamed keys under their new names (for configs stored before a
    rename); a table stored where a list of tables is now expected becomes a list."""
    fields = {option_key(f): f for f in _fields(cls)}
    hints, out = _hints(cls), dict(options)
    for old, new in renamed_options(cls).items():
        if old in out and new not in out and new in fields:
            value = out.pop(old)
            if isinstance(value, dict) and not _check(value, hints.get(fields[new].name, Any))[0]:
                value = [value] if value else []
            out[new] = value
    return out


# -- describing ---------------------------------------------------------------------------------


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def describe_options(cls: type) -> list[dict[str, Any]]:
    """Each option of ``cls`` as plain data: ``name`` (its TOML key), ``type`` (as text),
    ``default`` (None when unset or required), ``required`` and ``help`` ("" when the field
    has none, e.g. a plug-in's plain dataclass)."""
    hints = _hints(cls)
    return [
        {
            "name": option_key(f),
            "type": type_text(hints.get(f.name, Any)),
            "default": _default(f),
            "required": f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING,
            "help": f.metadata.get("help", ""),
        }
        for f in _fields(cls)
    ]


def toml_value(value: Any) -> str:
    """A value as TOML writes it (``"text"``, ``true``, ``[1, 2]``, ``{ a = 1 }``); ``unset``
    for None."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return repr(value)


def markdown_table(cls: type) -> str:
    """The options of ``cls`` as a Markdown table: option | type | default | what it does."""

    def cell(text: str) -> str:
        for raw, escaped in (("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("\n", " ")):
            text = text.replace(raw, escaped)
        return text

    def default(d: dict[str, Any]) -> str:
        if d["required"] or d["default"] is None:
            return "required" if d["required"] else "unset"
        return "`" + toml_value(d["default"]).replace("|", "\\|") + "`"

    rows = ["| option | type | default | what it does |", "|---|---|---|---|"]
    for d in describe_options(cls):
        rows.append(f"| `{d['name']}` | {cell(d['type'])} | {default(d)} | {cell(d['help'])} |")
    return "\n".join(rows)


__all__ = [
    "OptionError",
    "TomlFile",
    "describe_options",
    "markdown_table",
    "option",
    "option_key",
    "read_options",
    "renamed_options",
    "toml_value",
    "type_text",
    "upgrade_options",
]
