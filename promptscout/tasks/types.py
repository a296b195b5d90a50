"""The task data types: :class:`Example` and :class:`Task`, with the checks a task must pass.

Both are plain, picklable data (no torch), so they can travel to evaluator workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from promptscout.errors import PromptscoutError
from promptscout.tasks._messages import _names, _show

SPLITS = ("train", "dev", "test")
KINDS = ("classification", "generation")
# A pseudo-split: one example per content-free input ("N/A", "", "[MASK]") in every input field,
# so an evaluator scores a prompt's label prior like any split (contextual calibration).
CONTENT_FREE_SPLIT = "content-free"
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


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
        if name == CONTENT_FREE_SPLIT:
            return self.content_free()
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

    def content_free(self) -> tuple[Example, ...]:
        """The content-free pseudo-split (ids ``content-free-<i>``): every input field holds one
        of :data:`CONTENT_FREE_INPUTS`; labels are placeholders (class 0 or empty text)."""
        label: int | str = 0 if self.kind == "classification" else ""
        return tuple(
            Example(f"{CONTENT_FREE_SPLIT}-{i}", dict.fromkeys(self.input_fields, text), label)
            for i, text in enumerate(CONTENT_FREE_INPUTS)
        )

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
        if split == CONTENT_FREE_SPLIT:
            by_id = {e.id: e for e in pool}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise PromptscoutError(f"no content-free example {missing[0]!r}")
            return tuple(by_id[i] for i in ids)
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
