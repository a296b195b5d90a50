"""Hugging Face ``datasets`` as a task source: a hub name, a ``save_to_disk`` folder, or local
data files (``.csv``, ``.tsv``, ``.json``, ``.jsonl``, ``.parquet``, or a folder of them).

A :class:`~promptscout.tasks.dataset_spec.DatasetSpec` says where the data is and how it maps
onto a task: which column is the ``{text}`` field, which further columns are fields of
multi-field templates, which column holds the label, which dataset split is ``train``, ``dev`` and
``test`` (or how many dev/test examples to carve out of ``train``, stratified by class, with the
task's seed). A ``ClassLabel`` label column gives the class names; integer labels are class
indices ``0..max``; text labels make a generation task, as for task folders.

The ``datasets`` package is imported only when such a task loads, so ``import promptscout``
stays light.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError, first_line
from promptscout.tasks._messages import _names, _show
from promptscout.tasks.dataset_spec import DatasetSpec
from promptscout.tasks.types import Example, Task

# Builders of the local files ``datasets`` reads, by suffix (with their extra arguments).
DATA_FILES = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
DEV_NAMES = ("validation", "dev", "valid", "val")  # what a dataset's dev split is called
TEXT_NAMES = ("text", "sentence")
LABEL_NAMES = ("label", "labels")
_INT = re.compile(r"[+-]?\d+")
_Row = tuple[int, dict[str, str], Any]  # (row index, input fields, raw label)


def is_saved_dataset(folder: Path) -> bool:
    """Whether ``folder`` was written by ``Dataset.save_to_disk`` or ``DatasetDict``'s."""
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def dataset_splits(spec: DatasetSpec) -> dict[str, int]:
    """The dataset's splits and their sizes, e.g. ``{"train": 8544, "validation": 1101}``
    (loading it, so a hub dataset is downloaded and cached)."""
    return {name: ds.num_rows for name, ds in _open(spec, f"dataset {spec.source!r}").items()}


def load_dataset_task(
    spec: DatasetSpec, *, seed: int = 42, label_words: Sequence[str] | None = None
) -> Task:
    """Load the task a :class:`DatasetSpec` describes.

    Args:
        spec: The dataset and its mapping onto the task.
        seed: Seeds carving dev/test out of train (``dev_size``, ``test_size``).
        label_words: Default verbalizers, one per class (default: the class names).

    Raises:
        PromptscoutError: One line naming the dataset (split, row, column) and the fix.
    """
    where = f"dataset {spec.source!r}"
    splits = _open(spec, where)
    roles = _roles(spec, splits, where)
    train_ds = splits[roles["train"]]
    columns = list(train_ds.column_names)
    text = _column(spec.text_column, TEXT_NAMES, columns, where, "text_column")
    label = _column(spec.label_column, LABEL_NAMES, columns, where, "label_column")
    for column in spec.fields:
        _column(column, (), columns, where, "fields")
        if column in (text, label):
            role = "text" if column == text else "label"
            msg = f"{column!r} is already the {role} column; list only further input columns"
            raise PromptscoutError(f"{where}: [task] fields: {msg}")
    feature = train_ds.features[label]
    names = _class_names(feature, where, label)
    rows: dict[str, list[_Row]] = {}
    for role, split in roles.items():
        ds = splits[split]
        for column in (text, label, *spec.fields):
            if column not in ds.column_names:
                msg = (
                    f"split {split!r} has no column {column!r} (columns: {_names(ds.column_names)})"
                )
                raise PromptscoutError(f"{where}: {msg}")
        rows[role] = _rows(ds, f"{where} split {split!r}", text, label, spec.fields, names)
    if "test" in roles and not spec.test_split and all(raw is None for _, _, raw in rows["test"]):
        del rows["test"]  # a hub test split with hidden labels (-1): no held-out data
    for role, split in roles.items():
        for i, _, raw in rows.get(role, ()):
            if raw is None:
                fix = f"name a labelled split as {role}_split"
                fix += "" if role == "train" else f", or carve {role}_size out of train"
                msg = f"split {split!r} row {i} has no label (-1); {fix}"
                raise PromptscoutError(f"{where}: {msg}")
    _carve(spec, rows, seed, where)
    kind, classes, convert = _label_space(rows, names, where)
    input_fields = ("text", *spec.fields)
    examples = {
        role: tuple(
            Example(f"{role}-{i}", values, convert(raw))
            for i, (_, values, raw) in enumerate(rows.get(role, ()))
        )
        for role in ("train", "dev", "test")
    }
    for role in ("train", "dev"):
        if not examples[role]:
            raise PromptscoutError(f"{where}: the {role} split has no examples")
    words = tuple(label_words) if label_words is not None else classes
    source = Path(spec.source.rstrip("/\\"))
    name = (source.stem if source.suffix.lower() in DATA_FILES else source.name) or spec.source
    name += f"-{spec.config}" if spec.config else ""
    return Task(
        name,
        kind,
        classes,
        words,
        input_fields,
        examples["train"],
        examples["dev"],
        examples["test"],
        spec.description,
    )


@contextlib.contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """No progress bars while loading (restored afterwards)."""
    enabled = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if enabled:
            datasets.enable_progress_bars()


def _looks_local(source: str) -> bool:
    return (
        source.startswith((".", "/", "~", "\\"))
        or Path(source).suffix.lower() in DATA_FILES
        or source.count("/") > 1
        or "\\" in source
    )


def _open(spec: DatasetSpec, where: str) -> dict[str, Any]:
    """The dataset's splits by name (a single ``Dataset`` is the ``train`` split)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - a dependency of the package
        raise PromptscoutError(
            "[task] dataset needs the datasets package: pip install datasets"
        ) from None
    path = Path(spec.source).expanduser()
    local = path.exists()
    if local and (spec.config or spec.revision):
        key = "dataset_config" if spec.config else "revision"
        raise PromptscoutError(f"{where}: {key} is for hub datasets, not a local {path}")
    with _quiet(datasets):
        try:
            if path.is_dir() and is_saved_dataset(path):
                data = datasets.load_from_disk(str(path))
            elif path.is_file():
                builder, kwargs = _builder(path, where)
                data = datasets.load_dataset(builder, data_files=str(path), **kwargs)
            elif path.is_dir():
                data = datasets.load_dataset(str(path))
            elif _looks_local(spec.source):
                raise PromptscoutError(
                    f"{where}: no such folder or file; give a save_to_disk folder, a data file "
                    f"({', '.join(DATA_FILES)}) or a hub name"
                )
            else:
                data = datasets.load_dataset(
                    spec.source, spec.config or None, revision=spec.revision or None
                )
        except PromptscoutError:
            raise
        except (ConnectionError, TimeoutError) as exc:
            raise PromptscoutError(
                f"{where}: no such local folder or file, and the Hugging Face hub could not be "
                f"reached ({_described(exc)}); pass a local folder (save_to_disk) or data file"
            ) from None
        except Exception as exc:
            raise PromptscoutError(_load_error(spec, where, local, exc)) from None
    if isinstance(data, datasets.Dataset):
        return {"train": data}
    if not isinstance(data, datasets.DatasetDict):
        raise PromptscoutError(f"{where}: expected a dataset of splits, got {type(data).__name__}")
    return dict(data)


def _described(exc: BaseException) -> str:
    line = first_line(exc)
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _load_error(spec: DatasetSpec, where: str, local: bool, exc: Exception) -> str:
    from datasets.exceptions import DatasetNotFoundError

    if isinstance(exc, DatasetNotFoundError) and not local:
        return (
            f"{where}: no such local folder or file, and no such dataset on the Hugging Face "
            "hub (a gated or private one needs `hf auth login`)"
        )
    if "config" in str(exc).lower() and not spec.config and not local:
        return f"{where}: {_described(exc)}; set dataset_config"
    return f"{where}: cannot be loaded ({_described(exc)})"


def _builder(path: Path, where: str) -> tuple[str, dict[str, Any]]:
    found = DATA_FILES.get(path.suffix.lower())
    if found is None:
        known = ", ".join(DATA_FILES)
        raise PromptscoutError(f"{where}: unknown file type {path.suffix!r}; use one of {known}")
    return found


def _roles(spec: DatasetSpec, splits: dict[str, Any], where: str) -> dict[str, str]:
    """Which dataset split plays train, dev and test (dev/test absent when carved or none)."""
    have = list(splits)

    def named(split: str, key: str) -> str:
        if split not in splits:
            raise PromptscoutError(
                f"{where}: [task] {key}: no split {split!r} (splits: {_names(have)})"
            )
        return split

    roles = {"train": named(spec.train_split, "train_split")}
    if spec.dev_split:
        roles["dev"] = named(spec.dev_split, "dev_split")
    elif not spec.dev_size:
        found = [s for s in DEV_NAMES if s in splits and s != spec.train_split]
        if not found:
            raise PromptscoutError(
                f"{where}: no dev split (splits: {_names(have)}); set dev_split to one of them, "
                "or dev_size = N to carve N dev examples out of train"
            )
        roles["dev"] = found[0]
    if spec.test_split:
        roles["test"] = named(spec.test_split, "test_split")
    elif not spec.test_size and "test" in splits and "test" not in roles.values():
        roles["test"] = "test"
    return roles


def _column(name: str, defaults: Sequence[str], columns: list[str], where: str, key: str) -> str:
    if name:
        if name in columns:
            return name
        problem = f"no column {name!r}"
    else:
        lower = {c.lower(): c for c in columns}
        found = [lower[d] for d in defaults if d in lower]
        if found:
            return found[0]
        problem = f"no {' or '.join(defaults)} column"
    raise PromptscoutError(f"{where}: [task] {key}: {problem} (columns: {_names(columns)})")


def _class_names(feature: Any, where: str, column: str) -> tuple[str, ...] | None:
    """The ``ClassLabel``'s names, None for a plain column; lists of labels are refused."""
    from datasets import ClassLabel, Value

    if isinstance(feature, ClassLabel):
        return tuple(str(n) for n in feature.names)
    if not isinstance(feature, Value):
        raise PromptscoutError(
            f"{where}: label column {column!r} holds {type(feature).__name__} values; one label "
            "per example (an integer, a ClassLabel or a text) is needed"
        )
    return None


def _rows(
    ds: Any,
    where: str,
    text: str,
    label: str,
    extra: Sequence[str],
    names: tuple[str, ...] | None,
) -> list[_Row]:
    """Per example (row index, input fields, raw label); the raw label of a ``ClassLabel`` row is
    its class index, None where the dataset has no label (-1)."""
    data = ds.select_columns(list(dict.fromkeys((text, label, *extra)))).to_dict()
    rows: list[_Row] = []
    for i in range(ds.num_rows):
        values: dict[str, str] = {}
        for column in (text, *extra):
            value = data[column][i]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                msg = f"column {column!r} must be text, not {_show(value)}"
                raise PromptscoutError(f"{where} row {i}: {msg}")
            values["text" if column == text else column] = value.strip()
        raw = data[label][i]
        if names is not None:
            raw = None if raw is None or raw < 0 else int(raw)
        else:
            raw = raw.strip() if isinstance(raw, str) else raw
            if raw == "" or isinstance(raw, bool) or not isinstance(raw, (int, str)):
                msg = f"label must be an integer or a text, not {_show(raw)}"
                raise PromptscoutError(f"{where} row {i}: {msg}")
        rows.append((i, values, raw))
    return rows


def _carve(spec: DatasetSpec, rows: dict[str, list[_Row]], seed: int, where: str) -> None:
    """Move ``test_size`` then ``dev_size`` examples from train to test and dev: per class (by
    raw label) a seeded shuffle, quotas proportional to the class's share (largest remainder);
    every split keeps the dataset's row order."""
    sizes = {"test": spec.test_size, "dev": spec.dev_size}
    wanted = sum(sizes.values())
    if not wanted:
        return
    train = rows["train"]
    if wanted >= len(train):
        msg = f"the train split has {len(train)} examples: too few to carve"
        carve = " + ".join(f"{role}_size = {n}" for role, n in sizes.items() if n)
        raise PromptscoutError(f"{where}: {msg} {carve} and keep training examples")
    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for position, (_, _, raw) in enumerate(train):
        groups.setdefault(str(raw), []).append(position)
    order = sorted(groups)  # a stable order of classes, whatever the rows' order
    for key in order:
        rng.shuffle(groups[key])
    taken: set[int] = set()
    for role in ("test", "dev"):
        if not sizes[role]:
            continue
        left = {key: [p for p in groups[key] if p not in taken] for key in order}
        quotas = _quotas({key: len(ps) for key, ps in left.items()}, sizes[role])
        chosen = {p for key in order for p in left[key][: quotas[key]]}
        taken |= chosen
        rows[role] = [train[p] for p in sorted(chosen)]
    rows["train"] = [row for p, row in enumerate(train) if p not in taken]


def _quotas(counts: dict[str, int], size: int) -> dict[str, int]:
    """``size`` split over the classes in proportion to ``counts`` (largest remainder; ties to
    the larger class, then the class order)."""
    total = sum(counts.values())
    exact = {key: size * n / total for key, n in counts.items()}
    quotas = {key: int(value) for key, value in exact.items()}
    rest = sorted(counts, key=lambda k: (-(exact[k] - quotas[k]), -counts[k]))
    for key in rest[: size - sum(quotas.values())]:
        quotas[key] += 1
    return quotas


def _label_space(
    rows: dict[str, list[_Row]], names: tuple[str, ...] | None, where: str
) -> tuple[str, tuple[str, ...], Any]:
    """Kind, classes and a raw-label converter: a ``ClassLabel`` gives the classes; integer
    labels are class indices ``0..max``; text labels make a generation task."""
    if names is not None:
        return "classification", names, int
    raws = [raw for split in rows.values() for _, _, raw in split]
    if not all(isinstance(r, int) or _INT.fullmatch(r) for r in raws):
        return "generation", (), str
    numbers = [int(r) for r in raws]
    if min(numbers) < 0 or max(numbers) >= 1000:
        raise PromptscoutError(
            f"{where}: integer labels from {min(numbers)} to {max(numbers)} are not class indices "
            "0..N-1; cast the label column to a ClassLabel (classes) or to strings (generation)"
        )
    return "classification", tuple(map(str, range(max(numbers) + 1))), int
