"""Where a Hugging Face dataset is and how it maps onto a task (:class:`DatasetSpec`); the
loader is :mod:`promptscout.tasks.hf_datasets`.

Example:
    >>> spec = DatasetSpec("data/reviews.csv", dev_size=32)
    >>> spec.fields, spec.train_split
    ((), 'train')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from promptscout.errors import PromptscoutError
from promptscout.tasks._messages import _names

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a column usable as a {placeholder}


class DatasetSpecError(PromptscoutError):
    """A bad :class:`DatasetSpec` value: ``key`` names the option, ``problem`` follows it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key, self.problem = key, problem
        super().__init__(f"'{key}' {problem}")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a Hugging Face dataset is and how it maps onto a task.

    Attributes:
        source: A hub name (``"stanfordnlp/sst2"``), a ``save_to_disk`` folder, a data file
            (``.csv``, ``.tsv``, ``.json``, ``.jsonl``, ``.parquet``; its rows are the ``train``
            split) or a folder of data files (split names from the file names).
        config: The dataset's configuration name (hub datasets with several, e.g. glue's
            ``sst2``).
        revision: Hub datasets: a branch, tag or commit.
        text_column: The column that becomes field ``text`` (default: ``text``, else
            ``sentence``).
        label_column: The label column (default: ``label``, else ``labels``).
        fields: Further input columns, each a ``{column}`` field of multi-field templates.
        train_split: The dataset split that is ``train``.
        dev_split: The dataset split that is ``dev`` (default: ``validation``, ``dev``,
            ``valid`` or ``val``, whichever exists).
        test_split: The dataset split that is ``test`` (default: ``test`` if it exists and is
            labelled; else none).
        dev_size: Carve this many dev examples out of ``train`` instead (stratified by class).
        test_size: Carve this many test examples out of ``train`` instead.

    Raises:
        DatasetSpecError: For values that contradict each other.
    """

    source: str
    config: str = ""
    revision: str = ""
    text_column: str = ""
    label_column: str = ""
    fields: tuple[str, ...] = field(default=())
    train_split: str = "train"
    dev_split: str = ""
    test_split: str = ""
    dev_size: int = 0
    test_size: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.fields, str) or not all(isinstance(f, str) for f in self.fields):
            raise DatasetSpecError("fields", f"must be a list of column names, not {self.fields!r}")
        object.__setattr__(self, "fields", tuple(self.fields))
        if not str(self.source).strip():
            raise DatasetSpecError("dataset", "must name a dataset, a folder or a data file")
        if not self.train_split:
            raise DatasetSpecError("train_split", "must name the dataset's training split")
        for split in ("dev", "test"):
            size = getattr(self, f"{split}_size")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise DatasetSpecError(f"{split}_size", f"must be 0 or more, got {size!r}")
            if size and getattr(self, f"{split}_split"):
                raise DatasetSpecError(
                    f"{split}_size",
                    f"carves {split} examples out of train: drop it or {split}_split",
                )
        for key, earlier in (("dev_split", ()), ("test_split", (self.dev_split,))):
            split = getattr(self, key)
            if split and split in (self.train_split, *earlier):
                raise DatasetSpecError(
                    key, f"{split!r} is already another role's split; give each role its own"
                )
        if len(set(self.fields)) != len(self.fields):
            raise DatasetSpecError("fields", f"lists a column twice: {_names(self.fields)}")
        for column in self.fields:
            if not _FIELD.fullmatch(column) or column == "text":
                raise DatasetSpecError(
                    "fields",
                    f"column {column!r} cannot be a {{placeholder}}: use columns named with "
                    "letters, digits and _ (and not 'text', which is text_column's field)",
                )

    @property
    def description(self) -> str:
        """The source as a task's ``source`` string, e.g. ``dataset:glue/sst2@main``."""
        config = f" ({self.config})" if self.config else ""
        return f"dataset:{self.source}{config}" + (f"@{self.revision}" if self.revision else "")
