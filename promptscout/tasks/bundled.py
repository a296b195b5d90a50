"""The bundled few-shot sets in ``promptscout/data/fewshot``: their metadata and cached loading."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.tasks._messages import _names
from promptscout.tasks.readers import read_examples
from promptscout.tasks.types import SPLITS, Example, Task

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "fewshot"
BUNDLED_SEEDS = (13, 21, 42, 87, 100)


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


@functools.lru_cache(maxsize=32)
def _bundled_split(path: Path, split: str) -> tuple[Example, ...]:
    # Bundled files never change and hold class indices: build each split once per process
    # (yahoo's test file, shared by all seeds, has 60,000 rows). Task checks the label range.
    rows = read_examples(path)
    return tuple(
        Example(f"{split}-{i}", fields, int(raw)) for i, (_, fields, raw) in enumerate(rows)
    )


def _other_splits(folder: Path, seed: int, used: tuple[Example, ...]) -> tuple[Example, ...]:
    """A held-out split for a set without a test file (dbpedia): the examples of the other
    seeds' splits that this seed's train and dev do not hold (by text), each once."""
    seen = {e.fields["text"] for e in used}
    rows: list[Example] = []
    for other in BUNDLED_SEEDS:
        for split in SPLITS[:2] if other != seed else ():
            for example in _bundled_split(folder / f"16-{other}" / f"{split}.tsv", split):
                if example.fields["text"] not in seen:
                    seen.add(example.fields["text"])
                    rows.append(Example(f"test-{len(rows)}", example.fields, example.label))
    return tuple(rows)


@functools.lru_cache(maxsize=32)
def _load_bundled(name: str, seed: int, words: Any, classes: Any) -> Task:
    meta = BUNDLED_TASKS[name]
    if classes is not None and len(classes) != len(meta.classes):
        msg = f"{len(meta.classes)} classes ({_names(meta.classes)}), not {len(classes)}"
        raise PromptscoutError(f"task {name!r} has {msg}; give one name per class")
    train, dev = (_bundled_split(meta.folder / f"16-{seed}" / f"{s}.tsv", s) for s in SPLITS[:2])
    if meta.has_test:
        test = _bundled_split(meta.folder / "test.tsv", "test")
    else:
        test = _other_splits(meta.folder, seed, train + dev)
    words = meta.label_words if words is None else words
    splits, source = (train, dev, test), f"bundled:{name}/16-{seed}"
    return Task(name, "classification", classes or meta.classes, words, ("text",), *splits, source)
