"""The ``[task]`` table: the labelled examples (a bundled task, a folder of files or a Hugging
Face dataset) and which split is searched on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from promptscout.options import OptionError, option, require_non_negative
from promptscout.tasks import KINDS, DatasetSpec, DatasetSpecError, Task, load_task
from promptscout.tasks.resplit import grow_train

SPLITS = ("train", "dev", "test")


@dataclass
class TaskConfig:
    """The ``[task]`` table: the labelled examples, and which split is searched on."""

    name: str = option(
        "",
        help="A bundled set (sst-2, mr, sst-5, agnews, yahoo, dbpedia); or give path or dataset.",
    )
    path: str = option(
        "", help="A folder of train, dev and (optionally) test files; or name or dataset."
    )
    dataset: str = option(
        "",
        help="A Hugging Face dataset: a hub name, a save_to_disk folder, or a .csv, .tsv, .json, "
        ".jsonl or .parquet file (its rows: the train split) or folder of them; or name or path.",
    )
    dataset_config: str = option(
        "", help="Dataset: its configuration name (hub datasets with several, e.g. glue's sst2)."
    )
    revision: str = option("", help="Dataset: a hub branch, tag or commit (default: main).")
    text_column: str = option(
        "", help="Dataset: the column that becomes {text} (default: text, else sentence)."
    )
    label_column: str = option(
        "",
        help="Dataset: the label column (default: label, else labels); a ClassLabel's names are "
        "the classes, integers are class indices, texts make a generation task.",
    )
    fields: list[str] = option(
        [], help="Dataset: further input columns, each a {column} field of multi-field templates."
    )
    train_split: str = option("train", help="Dataset: the split that is train.")
    dev_split: str = option(
        "",
        help="Dataset: the split that is dev (default: validation, dev, valid or val, whichever "
        "exists); or dev_size.",
    )
    test_split: str = option(
        "",
        help="Dataset: the split that is test (default: test, if it exists and is labelled); "
        "or test_size.",
    )
    dev_size: int = option(
        0,
        help="Dataset: carve this many dev examples out of train, stratified by class and "
        "seeded by split_seed (0: read dev_split).",
    )
    test_size: int = option(
        0, help="Dataset: carve this many test examples out of train (0: read test_split)."
    )
    kind: str = option(
        "",
        help="Task folder: classification | generation (default: its task.json's, else "
        "classification when every label is an integer).",
    )
    classes: list[str] = option(
        [],
        help="Task folder: the class names in label order; labels that are all class names map "
        "by name (so text labels make a classification task).",
    )
    split_seed: int = option(
        42,
        help="Which 16-shot split of a bundled set: 13, 21, 42, 87, 100; for a dataset, the "
        "seed of dev_size and test_size.",
    )
    label_words: list[str] = option(
        [], help="One word per class, in label order (default: the task's own)."
    )
    min_train: int = option(
        0,
        help="Move dev examples into train until train has this many (drawn class by class, "
        "seeded by split_seed; every class keeps a dev example): more for trained methods to "
        "learn from, the rest of dev to search on (0: off).",
    )
    search_split: str = option("dev", help="What searchers are scored on: train | dev | test.")
    holdout_split: str = option(
        "test", help="What finalists are re-scored on; never shown to searchers."
    )
    holdout_limit: int = option(
        0,
        help="Re-score the finalists on this many held-out examples, a seeded random subset "
        "(0: all of them).",
    )

    def __post_init__(self) -> None:
        if sum(map(bool, (self.name, self.path, self.dataset))) != 1:
            raise OptionError(
                None,
                "give exactly one of 'name' (a bundled set such as \"sst-2\"), 'path' (a task "
                "folder) or 'dataset' (a Hugging Face dataset)",
            )
        if self.dataset:
            try:
                self.spec  # noqa: B018 - checks the dataset options
            except DatasetSpecError as exc:
                raise OptionError(exc.key, exc.problem) from None
        else:
            for key in _DATASET_OPTIONS:
                if getattr(self, key) != _TASK_DEFAULTS[key]:
                    raise OptionError(key, "is for datasets only: use it with 'dataset'")
        for key in ("kind", "classes"):
            if getattr(self, key) and not self.path:
                raise OptionError(key, "is for task folders only: use it with 'path'")
        if self.kind not in ("", *KINDS):
            raise OptionError("kind", f"must be {' or '.join(KINDS)}, got {self.kind!r}")
        for key in ("search_split", "holdout_split"):
            if getattr(self, key) not in SPLITS:
                raise OptionError(key, f"must be train, dev or test, got {getattr(self, key)!r}")
        require_non_negative(self, ["holdout_limit", "min_train"])
        if self.search_split == self.holdout_split:
            raise OptionError(
                "holdout_split", "must differ from search_split: held-out data is never searched"
            )

    @classmethod
    def from_stored(cls, table: dict[str, Any]) -> TaskConfig:
        """The table as a store or an export keeps it (options a newer version added take their
        defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in table.items() if k in known})

    @property
    def source(self) -> str:
        """What the table names, for people: the bundled name, the folder or the dataset."""
        return self.name or self.path or self.spec.description  # type: ignore[union-attr]

    def load(self) -> Task:
        """The task this table names, with its label words (and ``min_train`` training
        examples)."""
        task = load_task(
            self.spec,
            seed=self.split_seed,
            label_words=self.label_words or None,
            kind=self.kind or None,
            classes=self.classes or None,
        )
        return grow_train(task, self.min_train, self.split_seed)  # as it is with min_train = 0

    @property
    def spec(self) -> str | DatasetSpec:
        """What :func:`~promptscout.tasks.load_task` loads: the bundled name or the folder, or
        a :class:`~promptscout.tasks.DatasetSpec` for a dataset."""
        if not self.dataset:
            return self.path or self.name
        return DatasetSpec(
            self.dataset,
            config=self.dataset_config,
            revision=self.revision,
            text_column=self.text_column,
            label_column=self.label_column,
            fields=tuple(self.fields),
            train_split=self.train_split,
            dev_split=self.dev_split,
            test_split=self.test_split,
            dev_size=self.dev_size,
            test_size=self.test_size,
        )


_DATASET_OPTIONS = (
    "dataset_config",
    "revision",
    "text_column",
    "label_column",
    "fields",
    "train_split",
    "dev_split",
    "test_split",
    "dev_size",
    "test_size",
)
_TASK_DEFAULTS = {
    f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
    for f in dataclasses.fields(TaskConfig)
}
