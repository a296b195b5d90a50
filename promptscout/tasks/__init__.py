"""Tasks: the labelled examples prompts are scored on, their loaders and the bundled data sets.

A :class:`Task` is plain, picklable data (no torch), so it can travel to evaluator workers.
:func:`load_task` reads a bundled few-shot set, a folder of ``train``/``dev``/``test`` files, or a
Hugging Face dataset that a :class:`DatasetSpec` describes (:mod:`.hf_datasets`).

Example:
    >>> task = load_task("sst-2", seed=42)
    >>> len(task.dev), task.classes
    (32, ('negative', 'positive'))
"""

from promptscout.tasks.bundled import BUNDLED_SEEDS, BUNDLED_TASKS, DATA_DIR, BundledTask
from promptscout.tasks.dataset_spec import DatasetSpec, DatasetSpecError
from promptscout.tasks.hf_datasets import DEV_NAMES, dataset_splits, is_saved_dataset
from promptscout.tasks.loading import load_task
from promptscout.tasks.readers import FORMATS, read_examples
from promptscout.tasks.types import (
    CONTENT_FREE_INPUTS,
    CONTENT_FREE_SPLIT,
    KINDS,
    SPLITS,
    Example,
    Task,
)

__all__ = [
    "BUNDLED_SEEDS",
    "BUNDLED_TASKS",
    "DATA_DIR",
    "FORMATS",
    "KINDS",
    "SPLITS",
    "CONTENT_FREE_INPUTS",
    "DEV_NAMES",
    "CONTENT_FREE_SPLIT",
    "BundledTask",
    "DatasetSpec",
    "DatasetSpecError",
    "Example",
    "Task",
    "dataset_splits",
    "is_saved_dataset",
    "load_task",
    "read_examples",
]
