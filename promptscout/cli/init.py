"""``promptscout init DATA``: a commented campaign file that runs as is, from your data.

DATA is a task folder (``train``/``dev``/``test`` files), a Hugging Face dataset saved with
``save_to_disk``, a data file or folder of them, or a hub name. ``init`` loads it, detects the
task (classification with its classes, or generation), proposes label words (the class names
where they are single words; otherwise a probe of the model on the training examples), carves
dev and test out of train where the dataset has none, and writes the file: ``[campaign]``,
``[model]``, ``[task]`` and commented tables, with no ``[[searchers]]`` (the default mix runs).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from promptscout.cli.output import note
from promptscout.errors import PromptscoutError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEV_CAP = 32  # dev examples carved when a dataset has no dev split (a few-shot search split)
TEST_CAP = 500  # test examples carved when it has no labelled test split
MAX_CLASSES = 50  # text labels with more distinct values are generation targets
# A single word: letters, with inner hyphens or apostrophes ("sci-fi", "don't").
_WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")


def add_init_parser(sub: Any) -> None:
    """The ``init`` sub-command (registered by :func:`promptscout.cli.build_parser`)."""
    from promptscout.model import EMBEDDED_MODEL_NAME

    init = sub.add_parser(
        "init", help="write a campaign file for a data folder or a Hugging Face dataset"
    )
    init.add_argument(
        "data",
        metavar="DATA",
        help="a task folder (train/dev/test files), a save_to_disk folder, a data file "
        "(.csv, .tsv, .json, .jsonl, .parquet) or a Hugging Face hub dataset name",
    )
    init.add_argument(
        "-o", "--output", default="campaign.toml", help="file to write (default campaign.toml)"
    )
    init.add_argument(
        "--model",
        default=EMBEDDED_MODEL_NAME,
        help=f"the model written to [model] and probed for label words (default: "
        f"{EMBEDDED_MODEL_NAME})",
    )
    init.add_argument("--dataset-config", default="", help="hub datasets: the configuration name")
    init.add_argument("--revision", default="", help="hub datasets: a branch, tag or commit")
    init.add_argument("--text-column", default="", help="datasets: the column that is {text}")
    init.add_argument("--label-column", default="", help="datasets: the label column")
    init.add_argument(
        "--fields", default="", help="datasets: further input columns, comma-separated"
    )
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from promptscout.config import parse_config

    out = Path(args.output)
    if out.exists():
        raise PromptscoutError(f"{out} already exists; pass -o NEW.toml (init never overwrites)")
    table, task = _detect(args)
    words, how = _label_words(task, args.model)
    text = _campaign_text(args, table, task, words, how)
    parse_config(tomllib.loads(text), source=str(out), text=text)  # it must run as written
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with out.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise PromptscoutError(f"{out} already exists; pass -o NEW.toml") from None
    sizes = ", ".join(f"{len(getattr(task, s))} {s}" for s in ("train", "dev", "test"))
    note(f"task: {_kind_line(task)}")
    if task.kind == "classification":
        note(f"label words: {', '.join(words)} ({how})")
    note(f"splits: {sizes}" + _carved_note(table, task))
    note(f"wrote {out}; run it with: promptscout run {out}")
    return 0


def _kind_line(task: Any) -> str:
    if task.kind != "classification":
        return "generation (target texts; ranked by exact_match)"
    return f"classification, {task.num_classes} classes: {', '.join(task.classes)}"


def _carved_note(table: dict[str, Any], task: Any) -> str:
    carved = [s for s in ("dev", "test") if table.get(f"{s}_size")]
    if not carved:
        return ""
    how = ", stratified by class" if task.kind == "classification" else ""
    return f" ({' and '.join(carved)} carved out of train{how}, split_seed 42)"


def _dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {
        "dataset_config": args.dataset_config,
        "revision": args.revision,
        "text_column": args.text_column,
        "label_column": args.label_column,
        "fields": [f.strip() for f in args.fields.split(",") if f.strip()],
    }
    return {k: v for k, v in options.items() if v}


def _detect(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The ``[task]`` table's source options and the task they load."""
    from promptscout.tasks import BUNDLED_TASKS, FORMATS, load_task

    data = args.data
    folder = Path(data).expanduser()
    options = _dataset_options(args)
    has = {
        split: any((folder / f"{split}{ext}").is_file() for ext in FORMATS)
        for split in ("train", "dev")
    }
    if folder.is_dir() and all(has.values()) and not options:
        task = load_task(data)  # a task folder: the folder loader, as `path`
        classes = categorical_labels(task)
        if classes is None:
            return {"path": data}, task
        table = {"path": data, "kind": "classification", "classes": list(classes)}
        return table, load_task(data, kind="classification", classes=classes)
    if not folder.exists() and data.strip().lower() in BUNDLED_TASKS and not options:
        return {"name": data.strip().lower()}, load_task(data)
    return _detect_dataset(data, options)


def categorical_labels(task: Any) -> tuple[str, ...] | None:
    """The class names of a task whose text labels are a few repeated names (``negative``,
    ``positive``), sorted; None for a classification task or real generation targets.

    Text labels are read as classes when there are at most :data:`MAX_CLASSES` distinct ones,
    each a short text, the training examples repeat them (fewer distinct labels than half the
    examples) and every dev and test label is one of the training labels.
    """
    if task.kind != "generation" or not task.train:
        return None
    train = {str(e.label).strip() for e in task.train}
    others = {str(e.label).strip() for e in (*task.dev, *task.test)}
    repeated = len(train) <= max(2, len(task.train) // 2)
    short = all(0 < len(label) <= 40 and len(label.split()) <= 4 for label in train)
    if 2 <= len(train) <= MAX_CLASSES and repeated and short and others <= train:
        return tuple(sorted(train))
    return None


def _detect_dataset(data: str, options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A dataset: which split is train, and dev/test carved out of it where there is none."""
    from promptscout.tasks import DEV_NAMES, DatasetSpec, dataset_splits, load_task

    table: dict[str, Any] = {"dataset": data, **options}
    spec_options = {k: v for k, v in options.items() if k != "dataset_config"}
    spec_options["config"] = options.get("dataset_config", "")
    splits = dataset_splits(DatasetSpec(data, **spec_options))
    if "train" not in splits:
        table["train_split"] = next(iter(splits))  # e.g. a dataset of one split, "data"
    train_rows = splits[table.get("train_split", "train")]
    if not any(s in splits for s in DEV_NAMES):
        table["dev_size"] = max(1, min(DEV_CAP, train_rows // 4))

    def load(table: dict[str, Any]) -> Any:
        keys = ("train_split", "dev_size", "test_size")
        spec = DatasetSpec(data, **spec_options, **{k: table[k] for k in keys if k in table})
        return load_task(spec)

    task = load(table)
    left = train_rows - table.get("dev_size", 0)
    if not task.test and left >= 8:  # no labelled test split: carve one
        table["test_size"] = min(TEST_CAP, left // 3)
        task = load(table)
    return table, task


def _label_words(task: Any, model_name: str) -> tuple[list[str], str]:
    """The class names where they are single words; the model's probe for the others."""
    if task.kind != "classification":
        return [], ""
    names = list(task.classes)
    if task.label_words and list(task.label_words) != names:  # e.g. a task.json's label_words
        return list(task.label_words), "the task's own"
    seen: set[str] = set()
    single = []
    for name in names:
        single.append(bool(_WORD.fullmatch(name)) and name.lower() not in seen)
        seen.add(name.lower())
    if all(single):
        return names, "the class names"
    from promptscout.model import load_model
    from promptscout.searchers.label_search import propose_label_words

    note(f"probing {model_name} for label words (class names that are not single words)")
    model = load_model(model_name)
    taken = [n for n, ok in zip(names, single, strict=True) if ok]
    found = propose_label_words(model, task, probe_template(task), 1, taken)
    words, pairs = [], []
    for name, ok, proposed in zip(names, single, found, strict=True):
        word = name if ok or not proposed else proposed[0]
        why = "class name" if ok else "probed" if proposed else "class name: the probe found none"
        words.append(word)
        pairs.append(f"{name} -> {word} ({why})")
    if len({w.strip().lower() for w in words}) != len(words):
        return names, "the class names (the probe found no distinct words)"
    how = (
        f"{', '.join(pairs)}; probed: proposed by {model_name}'s probe on the training "
        "examples, for class names that are not single words"
    )
    return words, how


def probe_template(task: Any) -> str:
    """The default campaign's first hand-written template: each field labelled, then a cue."""
    labelled = "\n".join(f"{name.capitalize()}: {{{name}}}" for name in task.input_fields)
    return f"{labelled}\nLabel:"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=99, initial_indent="# ", subsequent_indent="# ")


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _campaign_name(data: str) -> str:
    path = Path(data.rstrip("/\\")).expanduser()
    stem = path.resolve().name if path.exists() else path.name
    stem = Path(stem).stem if path.is_file() else stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "campaign"


def _campaign_text(
    args: argparse.Namespace, table: dict[str, Any], task: Any, words: list[str], how: str
) -> str:
    name = _campaign_name(args.data)
    sizes = ", ".join(f"{len(getattr(task, s))} {s}" for s in ("train", "dev", "test"))
    lines = [
        f"# A promptscout campaign, written by `promptscout init {args.data}`.",
        f"# Run it as it is: promptscout run {args.output}",
        "# Every table's options with their defaults: `promptscout plugins --options TABLE`",
        "# (e.g. task, budget, bayesian), or the options reference in the README. Relative paths",
        "# are read from the folder you run promptscout in.",
        "",
        "# [campaign]: the campaign's name and seed. Every score lands in the store",
        f"# (runs/{name}.db), the winners in the export (runs/{name}.json):",
        f"# `promptscout leaderboard runs/{name}.db` ranks them, `promptscout report` draws them.",
        "[campaign]",
        f"name = {_toml(name)}",
        "seed = 0",
        "",
        "# [model]: the language model every prompt is scored with: the embedded default",
        "# (SmolLM2-135M-Instruct, on the CPU), a Hugging Face hub name or a local folder;",
        '# device = "cuda" runs it on a GPU.',
        "[model]",
        f"name = {_toml(args.model)}",
        "",
        "# [task]: the labelled examples. Searchers are scored on dev; the finalists are",
        "# re-scored on test, which no searcher ever sees.",
        *_comment(f"Detected: {_kind_line(task)}."),
        f"# Splits: {sizes}.",
        "[task]",
    ]
    lines += _task_lines(table, task.kind == "classification")
    if task.kind == "classification":
        lines += _comment(f"label_words: one per class, in class order: {how}.")
        lines.append(f"label_words = {_toml(words)}")
    lines += [
        '# search_split = "dev"',
        '# holdout_split = "test"',
        "",
        "# [objective]: what candidates are ranked by (the first name ranks).",
    ]
    if task.kind == "classification":
        lines += ["# [objective]", '# name = ["accuracy", "macro_f1"]   # default: accuracy']
    else:  # accuracy (the default) is for classification
        lines += ["[objective]", 'name = "exact_match"']
    template = probe_template(task)
    lines += [
        "",
        "# [budget]: when the search stops. Without this table: ten minutes of search.",
        "# [budget]",
        "# minutes = 10",
        "# examples = 20000   # examples scored on the search split",
        "",
        "# Searchers: this file has no [[searchers]], so the campaign runs the default mix",
        "# (hand-written templates, Bayesian search over templates, instructions, label words,",
        "# demonstrations and readouts, and LoRA fine-tuning with two demonstrations on an",
        "# in-process causal model; `promptscout run` names it when it starts). To",
        "# choose your own, add [[searchers]] tables like these (with any of them, the default",
        "# mix is off); `promptscout plugins` lists the types, and `promptscout plugins",
        "# --options bayesian` one type's options.",
        "#",
        "# [[searchers]]",
        '# type = "manual"',
        f"# templates = [{_toml(template)}]",
        "#",
        "# [[searchers]]",
        '# type = "bayesian"',
        "# max_demos = 2",
        "",
    ]
    return "\n".join(lines)


def _task_lines(table: dict[str, Any], stratified: bool) -> list[str]:
    if "path" in table:
        lines = [f"path = {_toml(table['path'])}   # a task folder: train, dev and test files"]
        if "classes" in table:  # text labels that name classes
            lines += [
                'kind = "classification"   # its labels are class names, not texts to generate',
                f"classes = {_toml(table['classes'])}",
            ]
        return lines
    if "name" in table:
        return [
            f"name = {_toml(table['name'])}   # a bundled few-shot set",
            "split_seed = 42   # which of its 16-shot splits: 13, 21, 42, 87 or 100",
        ]
    lines = [f"dataset = {_toml(table['dataset'])}   # a Hugging Face dataset"]
    comments = {
        "dataset_config": "the dataset's configuration",
        "revision": "a hub branch, tag or commit",
        "text_column": "the column that is {text}",
        "label_column": "the label column",
        "fields": "further input columns, each a {column} field",
        "train_split": "the split that is train",
    }
    for key, comment in comments.items():
        if key in table:
            lines.append(f"{key} = {_toml(table[key])}   # {comment}")
    if "text_column" not in table:
        lines.append(
            '# text_column = ""   # the column that is {text} (default: text, else sentence)'
        )
    if "fields" not in table:
        lines.append("# fields = []   # further input columns, each a {column} field of templates")
    for split in ("dev", "test"):
        if f"{split}_size" in table:
            why = f"no labelled {split} split: carved out of train"
            why += ", stratified by class" if stratified else ""
            lines.append(f"{split}_size = {table[f'{split}_size']}   # {why}")
    if "dev_size" in table or "test_size" in table:
        lines.append("split_seed = 42   # seeds the carving: another seed, other dev/test examples")
    return lines
