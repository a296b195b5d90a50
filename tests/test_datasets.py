"""Hugging Face datasets as a task source: save_to_disk folders and data files read through
``datasets``, split and column mapping, carved dev/test splits, the ``[task]`` options, errors.

Nothing here reaches the hub: the hub is switched off (offline mode), and the datasets cache is
a temporary folder.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from promptscout.builders import campaign_task
from promptscout.config import CampaignConfig, parse_config
from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt
from promptscout.tasks import DatasetSpec, load_task

datasets = pytest.importorskip("datasets")

NAMES = ["negative", "positive"]


pytestmark = pytest.mark.usefixtures("offline_datasets")


def error_of(fn, *needles: str) -> str:
    with pytest.raises(PromptscoutError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def labelled(n: int, names=NAMES, start: int = 0, labels=None, **columns) -> datasets.Dataset:
    """``n`` rows: text ``t<start+i>``, a ClassLabel ``label`` cycling over the classes."""
    labels = labels if labels is not None else [i % len(names) for i in range(n)]
    data = {"text": [f"t{start + i}" for i in range(n)], **columns, "label": labels}
    features = datasets.Features(
        {
            **{c: datasets.Value("string") for c in data if c != "label"},
            "label": datasets.ClassLabel(names=list(names)),
        }
    )
    return datasets.Dataset.from_dict(data, features=features)


def save(path: Path, **splits: datasets.Dataset) -> Path:
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


@pytest.fixture
def saved(tmp_path) -> Path:
    return save(
        tmp_path / "reviews",
        train=labelled(10),
        validation=labelled(6, start=100),
        test=labelled(4, start=200),
    )


def test_save_to_disk_splits_class_names_and_ids(saved):
    task = load_task(DatasetSpec(str(saved)))
    assert (len(task.train), len(task.dev), len(task.test)) == (10, 6, 4)
    assert task.kind == "classification" and task.classes == tuple(NAMES)
    assert task.label_words == tuple(NAMES)  # the class names are the default words
    assert task.input_fields == ("text",) and task.name == "reviews"
    assert task.dev[1].id == "dev-1" and task.dev[1].fields == {"text": "t101"}
    assert task.dev[1].label == 1 and task.source == f"dataset:{saved}"
    # A save_to_disk folder given as a plain task spec (e.g. `evaluate --task`) loads too.
    assert load_task(str(saved)) == task
    words = load_task(DatasetSpec(str(saved)), label_words=["bad", "good"]).label_words
    assert words == ("bad", "good")


def test_single_dataset_is_train_and_unlabelled_test_is_dropped(tmp_path):
    labelled(12).save_to_disk(str(tmp_path / "one"))
    task = load_task(DatasetSpec(str(tmp_path / "one"), dev_size=4))
    assert (len(task.train), len(task.dev), len(task.test)) == (8, 4, 0)
    # A hub-style test split with hidden labels (-1) is no held-out data, unless named.
    hidden = labelled(3, labels=[-1, -1, -1])
    folder = save(tmp_path / "glue", train=labelled(8), validation=labelled(4), test=hidden)
    assert load_task(DatasetSpec(str(folder))).test == ()
    spec = DatasetSpec(str(folder), test_split="test")
    error_of(lambda: load_task(spec), "'test' row 0 has no label (-1)")


def test_split_mapping_by_name(tmp_path):
    folder = save(tmp_path / "d", tr=labelled(6), va=labelled(4, start=50), te=labelled(2))
    task = load_task(DatasetSpec(str(folder), train_split="tr", dev_split="va", test_split="te"))
    assert (len(task.train), len(task.dev), len(task.test)) == (6, 4, 2)
    assert task.dev[0].fields["text"] == "t50"
    # a dev split is searched for by its usual names, never the train split itself
    swapped = load_task(DatasetSpec(str(save(tmp_path / "e", dev=labelled(3), train=labelled(5)))))
    assert (len(swapped.train), len(swapped.dev)) == (5, 3)


def test_column_mapping_and_multi_field_template(tmp_path):
    n = 6
    data = {
        "premise": [f"p{i}" for i in range(n)],
        "hypothesis": [f"h{i}" for i in range(n)],
        "idx": list(range(n)),
        "gold": [i % 3 for i in range(n)],
    }
    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "idx": datasets.Value("int32"),
            "gold": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
        }
    )
    ds = datasets.Dataset.from_dict(data, features=features)
    folder = save(tmp_path / "nli", train=ds, validation=ds)
    spec = DatasetSpec(
        str(folder), text_column="premise", label_column="gold", fields=("hypothesis",)
    )
    task = load_task(spec)
    assert task.input_fields == ("text", "hypothesis")  # idx is not an input unless listed
    assert task.classes == ("entailment", "neutral", "contradiction")
    example = task.train[4]
    assert example.fields == {"text": "p4", "hypothesis": "h4"} and example.label == 1
    prompt = Prompt("Premise: {text}\nHypothesis: {hypothesis}\nAnswer:", ("yes", "maybe", "no"))
    assert prompt.render(example) == "Premise: p4\nHypothesis: h4\nAnswer:"
    # numbers in an input column are read as their text
    spec = DatasetSpec(str(folder), text_column="premise", label_column="gold", fields=("idx",))
    assert load_task(spec).train[2].fields["idx"] == "2"


def test_carved_dev_and_test_are_stratified_and_seeded(tmp_path):
    # 100 examples: 50 / 30 / 20 over three classes, in one train split.
    labels = [0] * 50 + [1] * 30 + [2] * 20
    ds = labelled(100, names=["a", "b", "c"], labels=labels)
    folder = save(tmp_path / "big", train=ds)
    spec = DatasetSpec(str(folder), dev_size=10, test_size=20)
    task = load_task(spec, seed=7)
    assert (len(task.train), len(task.dev), len(task.test)) == (70, 10, 20)
    assert collections.Counter(e.label for e in task.dev) == {0: 5, 1: 3, 2: 2}
    assert collections.Counter(e.label for e in task.test) == {0: 10, 1: 6, 2: 4}
    texts = [{e.fields["text"] for e in split} for split in (task.train, task.dev, task.test)]
    assert sum(map(len, texts)) == 100 and len(set.union(*texts)) == 100  # disjoint, complete
    assert [e.id for e in task.dev] == [f"dev-{i}" for i in range(10)]
    numbers = [int(e.fields["text"][1:]) for e in task.dev]
    assert numbers == sorted(numbers)  # a carved split keeps the dataset's row order
    assert load_task(spec, seed=7) == task  # the same seed, the same splits
    other = load_task(spec, seed=8)
    assert {e.fields["text"] for e in other.dev} != texts[1]
    # through a campaign file: split_seed seeds the carving
    config = parse_config(
        {"task": {"dataset": str(folder), "dev_size": 10, "test_size": 20, "split_seed": 7}}
    )
    assert campaign_task(config) == task
    error_of(
        lambda: load_task(DatasetSpec(str(folder), dev_size=60, test_size=40)),
        "100 examples",
        "too few",
    )


def test_csv_and_json_files_through_datasets(tmp_path):
    rows = [("a fine film", 1), ("a dull film", 0)] * 5
    (tmp_path / "reviews.csv").write_text(
        "text,label\n" + "".join(f"{t},{label}\n" for t, label in rows), encoding="utf-8"
    )
    task = load_task(DatasetSpec(str(tmp_path / "reviews.csv"), dev_size=4))
    assert task.kind == "classification" and task.classes == ("0", "1")  # integer labels
    assert (len(task.train), len(task.dev), len(task.test)) == (6, 4, 0)
    assert task.name == "reviews"
    # a folder of data files: split names from the file names (dev -> validation)
    folder = tmp_path / "files"
    folder.mkdir()
    for split, n in (("train", 8), ("dev", 4), ("test", 2)):
        lines = [json.dumps({"sentence": f"{split} {i}", "label": i % 2}) for i in range(n)]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = load_task(DatasetSpec(str(folder)))
    assert (len(task.train), len(task.dev), len(task.test)) == (8, 4, 2)
    assert task.dev[3].fields == {"text": "dev 3"} and task.dev[3].label == 1


def test_text_labels_make_a_generation_task(tmp_path):
    path = tmp_path / "qa.jsonl"
    lines = [json.dumps({"question": f"q{i}", "answer": f"a{i}"}) for i in range(9)]
    path.write_text("\n".join(lines), encoding="utf-8")
    spec = DatasetSpec(str(path), text_column="question", label_column="answer", dev_size=3)
    task = load_task(spec)
    assert task.kind == "generation" and task.classes == () and task.label_words == ()
    assert all(e.label == f"a{e.fields['text'][1:]}" for e in task.train + task.dev)


def test_errors_name_what_exists(saved, tmp_path):
    error_of(
        lambda: load_task(DatasetSpec(str(saved), text_column="review")),
        "text_column",
        "no column 'review'",
        "columns: text, label",
    )
    error_of(
        lambda: load_task(DatasetSpec(str(saved), fields=("title",))),
        "no column 'title'",
        "columns: text, label",
    )
    error_of(
        lambda: load_task(DatasetSpec(str(saved), dev_split="dev")),
        "no split 'dev'",
        "splits: train, validation, test",
    )
    no_dev = save(tmp_path / "nodev", train=labelled(8), test=labelled(2))
    error_of(lambda: load_task(DatasetSpec(str(no_dev))), "no dev split", "dev_size")
    error_of(lambda: load_task(DatasetSpec("./no/such/folder")), "no such folder or file")
    floats = tmp_path / "scores.csv"
    floats.write_text("text,label\na,0.5\nb,1.5\n", encoding="utf-8")
    error_of(lambda: load_task(DatasetSpec(str(floats), dev_size=1)), "row 0", "integer or a text")
    error_of(lambda: DatasetSpec(str(saved), dev_size=3, dev_split="validation"), "dev_size")
    error_of(lambda: DatasetSpec(str(saved), dev_split="train"), "dev_split", "already")
    error_of(lambda: DatasetSpec(str(saved), fields=("bad-name",)), "placeholder")
    error_of(lambda: load_task(DatasetSpec(str(saved), config="sst2")), "dataset_config", "hub")


def test_unreachable_hub_is_one_line_that_says_pass_a_local_folder():
    message = error_of(
        lambda: load_task(DatasetSpec("someone/some-dataset")),
        "'someone/some-dataset'",
        "could not be reached",
        "local folder",
    )
    assert "Traceback" not in message


def test_task_table_options(saved):
    config = parse_config(
        {"task": {"dataset": str(saved), "fields": [], "label_words": ["bad", "good"]}}
    )
    assert isinstance(config.task.spec, DatasetSpec)
    task = campaign_task(config)
    assert task.label_words == ("bad", "good") and len(task.dev) == 6
    # a stored config (resume) loads the same task
    assert campaign_task(CampaignConfig.from_dict(config.to_dict())) == task
    assert parse_config({"task": {"name": "sst-2"}}).task.spec == "sst-2"

    def bad(table: dict, *needles: str) -> None:
        error_of(lambda: parse_config({"task": table}, source="c.toml"), "c.toml", *needles)

    bad({"name": "sst-2", "dataset": "x"}, "exactly one of 'name'", "'dataset'")
    bad({"path": "data", "dev_size": 4}, "[task] dev_size", "datasets only")
    bad({"name": "sst-2", "text_column": "t"}, "[task] text_column", "datasets only")
    bad({"dataset": "x", "dev_size": -1}, "[task] dev_size", "0 or more")
    bad({"dataset": "x", "test_size": 2, "test_split": "test"}, "[task] test_size")
    bad({"dataset": "x", "fields": ["a b"]}, "[task] fields", "placeholder")
    bad({"name": "sst-2", "classes": ["a", "b"]}, "[task] classes", "task folders only")
    bad({"path": "data", "kind": "ranking"}, "[task] kind", "classification or generation")


def test_the_readme_dataset_example_validates():
    import re
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(\[task\]\ndataset = .*?)```", readme, flags=re.S)
    assert block, "README: the [task] dataset example"
    config = parse_config(tomllib.loads(block.group(1)))
    spec = config.task.spec
    assert isinstance(spec, DatasetSpec) and spec.fields == ("sentence2",) and spec.test_size
