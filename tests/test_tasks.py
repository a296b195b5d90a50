"""Tests for promptscout.tasks: bundled sets, folder tasks in three formats, and input errors."""

from __future__ import annotations

import csv
import json
import pickle
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptscout.errors import PromptscoutError
from promptscout.tasks import BUNDLED_SEEDS, BUNDLED_TASKS, Example, Task, load_task
from promptscout.tasks.resplit import dev_folds, grow_train, move_to_train

# (classes, train/dev size per seed, test size) from data/fewshot/README.md
SIZES = {
    "sst-2": (2, 32, 1821),
    "mr": (2, 32, 2000),
    "sst-5": (5, 80, 2210),
    "agnews": (4, 64, 7600),
    "yahoo": (10, 160, 60000),
    "dbpedia": (14, 224, None),  # no test file: the other seeds' examples this seed lacks
}


def error_of(fn: Callable[[], object], *needles: str) -> str:
    """Run fn, expect a one-line PromptscoutError containing every needle; return its text."""
    with pytest.raises(PromptscoutError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def tsv_task(folder: Path, test: bool = True) -> Path:
    write(folder, "train.tsv", "sentence\tlabel\ngood film\t1\nbad film\t0\n")
    write(folder, "dev.tsv", "sentence\tlabel\nfine\t1\nawful\t0\n")
    if test:
        write(folder, "test.tsv", "sentence\tlabel\nnice\t1\n")
    return folder


# ----------------------------------------------------------------------------- bundled sets


def test_sst2_seed_42() -> None:
    task = load_task("sst-2", seed=42)
    assert (len(task.train), len(task.dev), len(task.test)) == (32, 32, 1821)
    assert task.name == "sst-2" and task.kind == "classification"
    assert task.classes == ("negative", "positive") == task.label_words
    assert task.num_classes == 2 and task.input_fields == ("text",)
    assert [ex.id for ex in task.dev[:3]] == ["dev-0", "dev-1", "dev-2"]
    assert task.test[120].id == "test-120" and task.example("test-120") is task.test[120]
    assert task.train[0].fields == {"text": "... overly melodramatic ..."}
    assert task.train[0].label == 0 and {ex.label for ex in task.test} == {0, 1}


def test_ids_are_stable_and_seed_changes_train() -> None:
    task = load_task("sst-2", seed=42)
    again = load_task("SST2", seed=42)  # case-insensitive alias, served from the cache
    assert again is task
    other = load_task("sst-2", seed=13)
    assert [e.fields for e in other.train] != [e.fields for e in task.train]
    assert other.test == task.test  # one shared test file
    assert other.train[5].id == task.train[5].id == "train-5"


@pytest.mark.parametrize("name", list(BUNDLED_TASKS))
def test_every_bundled_set_loads(name: str) -> None:
    n_classes, per_split, n_test = SIZES[name]
    for seed in BUNDLED_SEEDS:
        task = load_task(name, seed=seed)
        assert task.num_classes == n_classes == len(task.label_words)
        assert len(task.train) == len(task.dev) == per_split
        if n_test is None:  # held out: other seeds' examples, none of this seed's, each once
            used = {ex.fields["text"] for ex in task.train + task.dev}
            held_out = [ex.fields["text"] for ex in task.test]
            assert len(held_out) > 1000 and len(set(held_out)) == len(held_out)
            assert not used & set(held_out)
            assert [ex.id for ex in task.test[:2]] == ["test-0", "test-1"]
        else:
            assert len(task.test) == n_test
        assert sorted({ex.label for ex in task.train}) == list(range(n_classes))
        assert all(ex.fields["text"] == ex.fields["text"].strip() for ex in task.dev)
    assert task.split("test") is task.test


def test_bundled_label_words_override() -> None:
    task = load_task("sst-2", label_words=["bad", "good"])
    assert task.label_words == ("bad", "good") and task.classes == ("negative", "positive")
    assert task.test == load_task("sst-2").test
    error_of(lambda: load_task("sst-2", label_words=["a", "b", "c"]), "3 label words", "2 classes")
    error_of(lambda: load_task("sst-2", label_words=["yes", "yes"]), "distinct")
    error_of(lambda: load_task("sst-2", label_words="bad,good"), "list of strings")


def test_bundled_errors() -> None:
    message = error_of(lambda: load_task("sst-2", seed=7), "seed 7")
    assert all(str(seed) in message for seed in BUNDLED_SEEDS)
    message = error_of(lambda: load_task("no-such-task"), "no-such-task", "folder")
    assert all(name in message for name in BUNDLED_TASKS)
    error_of(lambda: load_task("sst-2").split("validation"), "validation", "train, dev, test")


def test_split_and_examples_lookup() -> None:
    task = load_task("mr")
    assert task.examples("dev", ["dev-3", "dev-0"]) == (task.dev[3], task.dev[0])
    assert task.examples("train") is task.train
    error_of(lambda: task.examples("dev", ["train-0"]), "dev", "train-0")
    error_of(lambda: task.example("dev-999"), "dev-999")


# ----------------------------------------------------------------------------- folder tasks


def test_tsv_folder_renames_sentence_and_keeps_raw_quotes(tmp_path: Path) -> None:
    folder = tsv_task(tmp_path / "reviews")
    write(folder, "train.tsv", 'sentence\tlabel\n"quoted" film\t1\nbad film\t0\n')
    task = load_task(str(folder))
    assert task.name == "reviews" and task.kind == "classification"
    assert task.classes == ("0", "1") == task.label_words
    assert task.train[0] == Example("train-0", {"text": '"quoted" film'}, 1)
    assert len(task.test) == 1 and task.input_fields == ("text",)


def test_csv_folder_with_extra_fields_and_quoting(tmp_path: Path) -> None:
    rows = [["premise", "text", "label"], ["a, b", 'say "hi"\nthere', "2"], ["c", "d", "0"]]
    for split in ("train", "dev"):
        with (tmp_path / f"{split}.csv").open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
    task = load_task(tmp_path)
    assert task.input_fields == ("text", "premise")
    assert task.dev[0].fields == {"text": 'say "hi"\nthere', "premise": "a, b"}
    assert task.classes == ("0", "1", "2") and task.dev[0].label == 2
    assert task.test == ()
    error_of(lambda: task.split("test"), "no test examples")


def test_jsonl_folder_with_task_json(tmp_path: Path) -> None:
    line = {"sentence": "great", "label": "pos", "topic": "film"}
    other = {"sentence": "awful", "label": "neg", "topic": "film"}
    for split in ("train", "dev", "test"):
        write(tmp_path, f"{split}.jsonl", json.dumps(line) + "\n\n" + json.dumps(other) + "\n")
    meta = {"name": "mine", "classes": ["neg", "pos"], "label_words": ["bad", "good"]}
    write(tmp_path, "task.json", json.dumps(meta))
    task = load_task(str(tmp_path))
    assert task.name == "mine" and task.kind == "classification"
    assert task.classes == ("neg", "pos") and task.label_words == ("bad", "good")
    assert [ex.label for ex in task.test] == [1, 0]
    assert task.train[1].fields == {"text": "awful", "topic": "film"}
    # Arguments override task.json.
    assert load_task(tmp_path, label_words=["no", "yes"]).label_words == ("no", "yes")


def test_text_labels_without_classes_make_a_generation_task(tmp_path: Path) -> None:
    lines = ['{"text": "2+2", "label": "4 "}', '{"text": "1+1", "label": "two"}']
    write(tmp_path, "train.jsonl", "\n".join(lines))
    write(tmp_path, "dev.tsv", "text\tlabel\n3+3\tsix\n")
    task = load_task(tmp_path)
    assert task.kind == "generation" and task.classes == () == task.label_words
    assert task.num_classes == 0
    assert [ex.label for ex in task.train] == ["4", "two"] and task.dev[0].label == "six"
    # Text labels become sorted classes when the kind says classification.
    forced = load_task(tmp_path, kind="classification")
    assert forced.classes == ("4", "six", "two") and forced.dev[0].label == 1
    # Integer labels stay text when the kind says generation.
    numeric = tsv_task(tmp_path / "numeric")
    assert load_task(numeric, kind="generation").train[0].label == "1"


def test_class_names_map_labels_by_name_then_by_index(tmp_path: Path) -> None:
    write(tmp_path, "train.csv", "text,label\na,1\nb,5\n")
    write(tmp_path, "dev.csv", "text,label\nc,3\n")
    stars = load_task(tmp_path, classes=["1", "2", "3", "4", "5"])
    assert [ex.label for ex in stars.train] == [0, 4]
    error_of(lambda: load_task(tmp_path, classes=["x", "y"]), "train.csv:3", "label 5", "0..1")


def test_bundled_name_as_path_reads_the_folder(tmp_path: Path, monkeypatch) -> None:
    tsv_task(tmp_path / "sst-2")
    monkeypatch.chdir(tmp_path)
    assert len(load_task("./sst-2").train) == 2
    assert len(load_task("sst-2").train) == 32


# ----------------------------------------------------------------------------- input errors


def test_file_errors_name_file_and_line(tmp_path: Path) -> None:
    folder = tsv_task(tmp_path / "t")

    def broken(name: str, text: str | bytes, *needles: str) -> None:
        write(folder, name, text)
        error_of(lambda: load_task(folder), name, *needles)
        tsv_task(folder)

    latin1 = "sentence\tlabel\nok\t1\ncafé\t0\n".encode("latin-1")
    broken("train.tsv", latin1, "train.tsv:3", "not UTF-8 text (byte 23)", "save it as UTF-8")
    broken("train.tsv", "", "no examples")
    broken("dev.tsv", "sentence\tlabel\n\n", "no examples")
    broken("train.tsv", "text\tscore\nok\t1\n", "no label column", "text, score")
    broken("train.tsv", "review\tlabel\nok\t1\n", "no text (or sentence) column", "review")
    broken("dev.tsv", "sentence\tlabel\nok\t1\nsplit\there\t0\n", "dev.tsv:3", "3 columns")
    broken("test.tsv", "sentence\tlabel\nok\t-1\n", "test.tsv:2", "label -1", "out of range")
    broken("train.tsv", "sentence\tlabel\nok\t\n", "train.tsv:2", "label")
    broken("dev.tsv", "sentence\ttopic\tlabel\nok\tx\t1\n", "dev.tsv", "differ")
    broken("train.tsv", "text\ttext\tlabel\na\tb\t1\n", "train.tsv:1", "distinct")


def test_jsonl_errors(tmp_path: Path) -> None:
    tsv_task(tmp_path)
    (tmp_path / "dev.tsv").unlink()
    cases = [
        ('{"text": "a", "label": 1}\n{"text": "b", "label": 0', "dev.jsonl:2", "bad JSON"),
        ('{"text": "a", "label": 1}\n[1, 2]\n', "dev.jsonl:2", "JSON object"),
        ('{"text": "a", "label": 1}\n{"text": "b"}\n', "dev.jsonl:2", "keys"),
        ('{"text": "a", "label": null}\n', "dev.jsonl:1", "label"),
        ('{"text": ["a"], "label": 1}\n', "dev.jsonl:1", "'text' must be text"),
    ]
    for text, *needles in cases:
        write(tmp_path, "dev.jsonl", text)
        error_of(lambda: load_task(tmp_path), *needles)


def test_folder_errors(tmp_path: Path) -> None:
    folder = tsv_task(tmp_path / "t")
    (folder / "dev.tsv").unlink()
    error_of(lambda: load_task(folder), "no dev file", "dev.tsv, dev.csv or dev.jsonl")
    tsv_task(folder)
    write(folder, "train.csv", "text,label\na,1\n")
    error_of(lambda: load_task(folder), "train.tsv and train.csv")
    (folder / "train.csv").unlink()
    write(folder, "task.json", '{"kind": "classification", "verbalizers": ["a", "b"]}')
    error_of(lambda: load_task(folder), "task.json", "verbalizers")
    write(folder, "task.json", '{"kind": "regression"}')
    error_of(lambda: load_task(folder), "task.json", "regression")
    write(folder, "task.json", '{"kind": ')
    error_of(lambda: load_task(folder), "task.json:1", "bad JSON")
    write(folder, "task.json", '{"label_words": ["a", "b", "c"]}')
    error_of(lambda: load_task(folder), str(folder), "3 label words", "2 classes")
    error_of(lambda: load_task(folder / "train.tsv"), "is a file")
    error_of(lambda: load_task(tmp_path / "missing"), "unknown task", "sst-2")


# ----------------------------------------------------------------------------- types


def test_example_hash_and_equality() -> None:
    a = Example("dev-0", {"text": "x"}, 1)
    assert a == Example("dev-0", {"text": "x"}, 1) and hash(a) == hash(Example("dev-0", {}, 0))
    assert a != Example("dev-0", {"text": "y"}, 1)
    assert len({a, Example("dev-0", {"text": "x"}, 1), Example("dev-1", {"text": "x"}, 1)}) == 2
    with pytest.raises(AttributeError):
        a.label = 0  # type: ignore[misc]


def test_task_pickles_and_keeps_lookups() -> None:
    task = load_task("sst-5", seed=21)
    copy = pickle.loads(pickle.dumps(task))
    assert copy == task and hash(copy) == hash(task) and copy.source == task.source
    assert copy.example("test-7") == task.test[7]


def test_task_validates_itself() -> None:
    ex = Example("train-0", {"text": "a"}, 2)

    def make(**changes: object) -> Task:
        args: dict = dict(name="t", kind="classification", classes=["a", "b"], label_words=[])
        args.update(input_fields=["text"], train=[], dev=[], test=[])
        return Task(**{**args, **changes})

    assert make().classes == ("a", "b") and make().label_words == ()
    error_of(lambda: make(train=[ex]), "train-0", "label 2")
    error_of(lambda: make(train=[Example("dev-0", {}, 0)] * 2), "occurs twice")
    error_of(lambda: make(kind="ranking"), "ranking")
    error_of(lambda: make(kind="generation"), "generation task has no classes")
    error_of(lambda: make(kind="generation", classes=[], train=[ex]), "not a target text")
    error_of(lambda: make(classes=["a", "a"]), "distinct")
    error_of(lambda: make().split("train"), "no train examples")


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
        min_size=1,
        max_size=4,
    )
)
def test_csv_and_jsonl_round_trip_any_text(tmp_path_factory, texts: list[str]) -> None:
    folder = tmp_path_factory.mktemp("roundtrip")
    with (folder / "train.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["text", "label"], *([t, i % 2] for i, t in enumerate(texts))])
    lines = (json.dumps({"text": t, "label": i % 2}) for i, t in enumerate(texts))
    write(folder, "dev.jsonl", "\n".join(lines))
    task = load_task(folder, kind="classification", classes=["a", "b"])
    expected = [t.strip() for t in texts]
    assert [ex.fields["text"] for ex in task.train] == expected
    assert [ex.fields["text"] for ex in task.dev] == expected


def test_grow_train_moves_dev_examples_class_by_class_and_keeps_one_of_each() -> None:
    task = load_task("sst-5", seed=13)  # 5 classes, 16 per class in train and in dev
    grown = grow_train(task, 80 + 23, seed=13)
    moved = grown.train[80:]
    assert grown.train[:80] == task.train and len(moved) == 23
    assert {e.id for e in moved} | {e.id for e in grown.dev} == {e.id for e in task.dev}
    assert not {e.id for e in moved} & {e.id for e in grown.dev}
    per_class = Counter(int(e.label) for e in moved)
    assert max(per_class.values()) - min(per_class.values()) <= 1  # drawn class by class
    assert grown.example(moved[0].id) == task.example(moved[0].id)  # ids kept
    # seeded: the same seed moves the same examples, another seed others
    assert grow_train(task, 103, seed=13) == grown
    assert grow_train(task, 103, seed=87).train != grown.train
    # as many as dev can give while keeping one of each class, and not one more
    most = grow_train(task, 80 + 75, seed=13)
    assert sorted(Counter(int(e.label) for e in most.dev).values()) == [1] * 5
    error_of(lambda: grow_train(task, 156, seed=13), "min_train = 156", "min_train = 155 or less")
    assert grow_train(task, 80, seed=13) is task  # train already has that many


def test_dev_folds_deal_every_dev_example_into_one_class_balanced_fold() -> None:
    task = load_task("sst-5", seed=13)  # 16 dev examples per class
    folds = dev_folds(task, 3, seed=13)
    ids = [i for fold in folds for i in fold]
    assert sorted(ids) == sorted(e.id for e in task.dev)  # each exactly once
    assert sorted(map(len, folds)) == [26, 27, 27]
    for c in range(5):
        per_fold = [sum(int(task.example(i).label) == c for i in fold) for fold in folds]
        assert max(per_fold) - min(per_fold) <= 1
    assert dev_folds(task, 3, seed=13) == folds and dev_folds(task, 3, seed=87) != folds
    # one fold's complement moved to train: the fold is what stays in dev
    learned = set(ids) - set(folds[0])
    grown = move_to_train(task, learned)
    assert {e.id for e in grown.dev} == set(folds[0]) and len(grown.train) == 80 + len(learned)
