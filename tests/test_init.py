"""``promptscout init``: from a data folder or a saved dataset to a campaign file that loads and
runs end to end (on the tiny model), label words from class names or the model's probe, and
one-line errors. The hub is switched off and the datasets cache is a temporary folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from campaign_fixtures import NEGATIVE, POSITIVE

from promptscout.cli import main
from promptscout.cli.init import categorical_labels
from promptscout.config import load_config
from promptscout.model import EMBEDDED_MODEL_NAME
from promptscout.tasks import load_task

datasets = pytest.importorskip("datasets")


pytestmark = pytest.mark.usefixtures("offline_datasets")


@pytest.fixture
def probe_model(monkeypatch, tiny_causal_dir):
    """The embedded model's loader returns the tiny model; records the names it was asked for."""
    import promptscout.model

    real, asked = promptscout.model.load_model, []

    def load(name, **kwargs):
        asked.append(name)
        return real(str(tiny_causal_dir))

    monkeypatch.setattr(promptscout.model, "load_model", load)
    return asked


@pytest.fixture
def no_model(monkeypatch):
    """The embedded model is never loaded (``run`` on the tiny model still loads that one)."""
    import promptscout.model

    real = promptscout.model.load_model

    def refuse(name, **kwargs):
        if name == EMBEDDED_MODEL_NAME:
            raise AssertionError("init probed the model although the class names are words")
        return real(name, **kwargs)

    monkeypatch.setattr(promptscout.model, "load_model", refuse)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows() -> list[tuple[str, int]]:
    return [(t, 1) for t in POSITIVE] + [(t, 0) for t in NEGATIVE]


def csv_folder(path: Path, names: list[str] | None = None) -> Path:
    """train.csv, dev.csv and test.csv with integer labels (classes "0" and "1"), or with the
    class ``names`` as labels."""
    path.mkdir(parents=True)
    data = rows()
    for split, split_rows in {"train": data[::2], "dev": data[1::2], "test": data}.items():
        lines = ["text,label"] + [f"{t},{names[y] if names else y}" for t, y in split_rows]
        (path / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_init_reads_text_labels_that_name_classes_as_classification(
    capsys, tmp_path, monkeypatch, no_model, tiny_causal_dir
):
    monkeypatch.chdir(tmp_path)
    folder = csv_folder(tmp_path / "reviews", names=["bad", "good"])
    code, _, err = cli(capsys, "init", "reviews", "-o", "c.toml")
    assert code == 0, err
    assert "classification, 2 classes: bad, good" in err and "label words: bad, good" in err
    config = load_config(tmp_path / "c.toml")
    assert config.task.kind == "classification" and config.task.classes == ["bad", "good"]
    task = config.task.load()
    assert [e.label for e in task.test] == [label for _, label in rows()]
    run_written(capsys, tmp_path / "c.toml", tiny_causal_dir)
    # the export carries the [task] table, so evaluate loads the same classification task
    code, out, err = cli(capsys, "evaluate", "--prompt", "runs/reviews.json", "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["examples"] == len(task.test)
    assert folder.is_dir()


def test_real_generation_targets_stay_generation(tmp_path):
    folder = tmp_path / "answers"
    folder.mkdir()
    for split in ("train", "dev"):
        lines = ["text,label"] + [f"question {i},answer number {i}" for i in range(6)]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert categorical_labels(load_task(str(folder))) is None


def saved_dataset(path: Path, names: list[str], splits: tuple[str, ...]) -> Path:
    data = rows() * 2
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
    )
    ds = datasets.Dataset.from_dict(
        {"text": [t for t, _ in data], "label": [label for _, label in data]}, features=features
    )
    parts = {"train": ds, "validation": ds.select(range(0, 32, 4)), "test": ds.select(range(16))}
    datasets.DatasetDict({s: parts[s] for s in splits}).save_to_disk(str(path))
    return path


def run_written(capsys, path: Path, tiny_causal_dir: Path) -> str:
    """Point the written file at the tiny model, give it a small budget, and run it."""
    text = path.read_text(encoding="utf-8")
    assert f'name = "{EMBEDDED_MODEL_NAME}"' in text  # init writes the embedded default
    text = text.replace(f'name = "{EMBEDDED_MODEL_NAME}"', f'name = "{tiny_causal_dir}"')
    path.write_text(text + "\n[budget]\nexamples = 8\n", encoding="utf-8")
    code, out, err = cli(capsys, "run", str(path))
    assert code == 0, err
    assert "default mix" in err and "rank" in out
    return out


def test_init_on_a_csv_folder_probes_for_words_and_runs(
    capsys, tmp_path, monkeypatch, probe_model, tiny_causal_dir
):
    monkeypatch.chdir(tmp_path)
    csv_folder(tmp_path / "my reviews")
    code, out, err = cli(capsys, "init", "my reviews")
    assert code == 0, err
    assert probe_model == [EMBEDDED_MODEL_NAME]  # class names "0" and "1" are not words
    assert "classification, 2 classes: 0, 1" in err and "8 train, 8 dev, 16 test" in err
    written = tmp_path / "campaign.toml"
    text = written.read_text(encoding="utf-8")
    assert "[[searchers]]\n" not in text.replace("# [[searchers]]\n", "")
    for table in ("[campaign]", "[model]", "[task]", "# [budget]", "# [[searchers]]"):
        assert table in text
    config = load_config(written)
    assert config.name == "my-reviews" and config.task.path == "my reviews"
    assert config.default_mix and config.searchers == []
    words = config.task.label_words
    assert len(words) == 2 and len(set(words)) == 2
    assert all(re.fullmatch(r"[A-Za-z]{3,}", w) for w in words)  # proposed by the probe
    assert f"label words: {', '.join(words)}" in err
    run_written(capsys, written, tiny_causal_dir)
    assert (tmp_path / "runs" / "my-reviews.db").is_file()


def test_init_on_a_saved_dataset_takes_class_names_and_runs(
    capsys, tmp_path, monkeypatch, no_model, tiny_causal_dir
):
    monkeypatch.chdir(tmp_path)
    saved_dataset(tmp_path / "sentiment", ["negative", "positive"], ("train", "validation"))
    out_file = tmp_path / "configs" / "sentiment.toml"
    code, _, err = cli(capsys, "init", str(tmp_path / "sentiment"), "-o", str(out_file))
    assert code == 0, err
    config = load_config(out_file)
    assert config.task.dataset == str(tmp_path / "sentiment")
    assert config.task.label_words == ["negative", "positive"]
    # no test split in the dataset: init carves one out of train, stratified, seeded
    assert config.task.test_size > 0 and config.task.dev_size == 0
    assert "split_seed = 42" in out_file.read_text(encoding="utf-8")
    assert f"{32 - config.task.test_size} train, 8 dev, {config.task.test_size} test" in err
    run_written(capsys, out_file, tiny_causal_dir)


def test_init_probes_for_class_names_that_are_not_single_words(
    capsys, tmp_path, monkeypatch, probe_model
):
    monkeypatch.chdir(tmp_path)
    names = ["thumbs down", "Good"]
    saved_dataset(tmp_path / "phrases", names, ("train", "test"))
    code, _, err = cli(capsys, "init", "phrases", "-o", "phrases.toml")
    assert code == 0, err
    assert probe_model == [EMBEDDED_MODEL_NAME]
    config = load_config(tmp_path / "phrases.toml")
    first, second = config.task.label_words
    assert second == "Good" and first != "thumbs down"  # a word is kept, a phrase probed
    assert re.fullmatch(r"[A-Za-z]{3,}", first)
    assert config.task.dev_size > 0 and config.task.test_size == 0  # dev carved, test read
    assert f"thumbs down -> {first} (probed)" in err


def test_init_refuses_to_overwrite_and_reports_bad_data_in_one_line(capsys, tmp_path):
    folder = csv_folder(tmp_path / "data")
    existing = tmp_path / "campaign.toml"
    existing.write_text("# mine\n", encoding="utf-8")
    code, _, err = cli(capsys, "init", str(folder), "-o", str(existing))
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "already exists" in lines[0]
    assert existing.read_text(encoding="utf-8") == "# mine\n"

    target = tmp_path / "hub.toml"
    code, _, err = cli(capsys, "init", "someone/no-such-dataset", "-o", str(target))
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    assert "could not be reached" in lines[0] and "local folder" in lines[0]
    assert not target.exists()


def test_init_writes_exact_match_for_a_generation_task(capsys, tmp_path, no_model):
    path = tmp_path / "qa.csv"
    lines = ["question,answer"] + [f"what is {i} plus one,{i + 1} apples" for i in range(20)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "qa.toml"
    argv = ["init", str(path), "-o", str(target), "--text-column", "question"]
    code, _, err = cli(capsys, *argv, "--label-column", "answer")
    assert code == 0, err
    assert "generation" in err
    config = load_config(target)
    assert config.objective.names == ["exact_match"] and config.task.label_words == []
    assert config.task.text_column == "question" and config.task.label_column == "answer"
    assert (config.task.dev_size, config.task.test_size) == (5, 5)
