"""load_task: the one entry point, resolving a bundled set's name, a task folder or a Hugging
Face dataset (:class:`~promptscout.tasks.dataset_spec.DatasetSpec`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.tasks._messages import _show
from promptscout.tasks.bundled import BUNDLED_SEEDS, BUNDLED_TASKS, _load_bundled
from promptscout.tasks.dataset_spec import DatasetSpec
from promptscout.tasks.folders import _load_folder, _str_tuple
from promptscout.tasks.hf_datasets import is_saved_dataset, load_dataset_task
from promptscout.tasks.readers import FORMATS
from promptscout.tasks.types import KINDS, Task

_ALIASES = {"sst2": "sst-2", "sst5": "sst-5", "ag_news": "agnews", "ag-news": "agnews"}


def load_task(
    spec: str | os.PathLike[str] | DatasetSpec,
    *,
    seed: int = 42,
    label_words: Sequence[str] | None = None,
    kind: str | None = None,
    classes: Sequence[str] | None = None,
) -> Task:
    """Load a bundled few-shot set, a task folder or a Hugging Face dataset.

    Args:
        spec: A bundled name (``sst-2``, ``mr``, ``sst-5``, ``agnews``, ``yahoo``, ``dbpedia``;
            case-insensitive; ``sst2`` works too) or a folder with ``train``, ``dev`` and
            optionally ``test`` files (``.tsv``, ``.csv`` or ``.jsonl``; columns ``text`` or
            ``sentence``, ``label``, and any extra input fields) and an optional ``task.json``
            (keys ``name``, ``kind``, ``classes``, ``label_words``). A folder named like a
            bundled set is read when written as a path, e.g. ``./sst-2``. A
            :class:`~promptscout.tasks.dataset_spec.DatasetSpec` loads a Hugging Face dataset (a
            hub name, a ``save_to_disk`` folder or data files); a ``save_to_disk`` folder
            without train/dev/test files loads as one with the spec's defaults.
        seed: Which bundled 16-shot split to use (13, 21, 42, 87 or 100); for a dataset, the
            seed of carving dev/test out of train; ignored for folders.
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
    words = _str_tuple("load_task", "label_words", label_words)
    names = _str_tuple("load_task", "classes", classes)
    if kind is not None and kind not in KINDS:
        raise PromptscoutError(f"kind {_show(kind)} is not one of {', '.join(KINDS)}")
    if isinstance(spec, DatasetSpec):
        return _load_dataset(spec, seed, words, kind, names)
    text = os.fspath(spec)
    key = _ALIASES.get(text.strip().lower(), text.strip().lower())
    if key in BUNDLED_TASKS and not any(c in text for c in "/\\") and not text.startswith("."):
        if isinstance(seed, bool) or seed not in BUNDLED_SEEDS:
            seeds = ", ".join(map(str, BUNDLED_SEEDS))
            raise PromptscoutError(f"task {key!r} has no split seed {_show(seed)}; use {seeds}")
        return _load_bundled(key, seed, words, names)
    folder = Path(text).expanduser()
    if folder.is_dir():
        no_files = not any((folder / f"train{ext}").is_file() for ext in FORMATS)
        if no_files and is_saved_dataset(folder):
            return _load_dataset(DatasetSpec(text), seed, words, kind, names)
        return _load_folder(folder, words, kind, names)
    if folder.is_file():
        raise PromptscoutError(f"{folder} is a file; give the folder holding train/dev/test files")
    raise PromptscoutError(
        f"unknown task {text!r}: not a bundled task ({', '.join(BUNDLED_TASKS)}) and no such "
        "folder; a folder with train, dev and test files (.tsv, .csv or .jsonl) works too"
    )


def _load_dataset(spec: DatasetSpec, seed: int, words: Any, kind: str | None, classes: Any) -> Task:
    if kind is not None or classes is not None:
        raise PromptscoutError(
            "a dataset's kind and classes come from its label column (a ClassLabel names the "
            "classes); drop kind and classes"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PromptscoutError(f"split seed must be an integer, got {_show(seed)}")
    return load_dataset_task(spec, seed=seed, label_words=words)
