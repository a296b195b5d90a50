"""The option reader: types, unknown and renamed keys, errors at the key's line, help texts for
every option, descriptions for docs and ``plugins``, and the README's generated reference."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from promptscout.catalog import REFERENCE_END, REFERENCE_START, options_reference
from promptscout.cli import main
from promptscout.config import SECTIONS, CampaignConfig, load_config
from promptscout.errors import PromptscoutError
from promptscout.options import (
    OptionError,
    describe_options,
    option,
    read_options,
    require_non_negative,
    require_positive,
    upgrade_options,
)
from promptscout.searchers import SEARCHERS, build_config, searcher_class

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass
class Kinds:
    renamed_options: ClassVar[dict[str, str]] = {"old_text": "text"}

    text: str = option("a", help="A string.")
    count: int = option(1, help="An integer.")
    rate: float = option(0.5, help="A float.")
    flag: bool = option(False, help="A bool.")
    words: list[str] = option([], help="Strings.")
    weights: list[float] = option([], help="Numbers.")
    sets: list[list[str]] = option([], help="Lists of strings (a longer note here).")
    table: dict[str, Any] = option({}, help="A table.")
    tables: list[dict[str, Any]] = option([], help="Tables.")
    limit: int | None = option(None, help="An optional integer.")
    anything: Any = option(None, help="Whatever.")
    names: str | list[str] = option(["x"], key="name", help="One name or a list.")

    def __post_init__(self) -> None:
        if self.count < 0:
            raise OptionError("count", f"must be 0 or more, got {self.count}")
        if self.text == "table":
            raise PromptscoutError("a problem of the whole table")


def problem(table: dict[str, Any], owner: str | None = None) -> OptionError:
    with pytest.raises(OptionError) as info:
        read_options(Kinds, table, owner=owner)
    return info.value


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("text", "b", "b"),
        ("count", 3, 3),
        ("rate", 2, 2.0),
        ("rate", 0.25, 0.25),
        ("flag", True, True),
        ("words", ["a", "b"], ["a", "b"]),
        ("weights", [1, 0.5], [1.0, 0.5]),
        ("sets", [["a"], ["b", "c"]], [["a"], ["b", "c"]]),
        ("table", {"k": [1]}, {"k": [1]}),
        ("tables", [{"k": 1}, {}], [{"k": 1}, {}]),
        ("limit", 7, 7),
        ("anything", {"x": [True]}, {"x": [True]}),
        ("name", "solo", "solo"),
        ("name", ["a", "b"], ["a", "b"]),
    ],
)
def test_each_type_is_accepted(key, value, expected):
    config = read_options(Kinds, {key: value})
    attribute = "names" if key == "name" else key
    got = getattr(config, attribute)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("text", 3, "'text' must be str, got 3"),
        ("count", "3", "'count' must be int, got '3'"),
        ("count", 2.5, "'count' must be int, got 2.5"),
        ("count", True, "'count' must be int, got True"),
        ("rate", False, "'rate' must be float, got False"),
        ("rate", "0.5", "'rate' must be float, got '0.5'"),
        ("flag", 1, "'flag' must be bool, got 1"),
        ("words", "a", "'words' must be list[str], got 'a'"),
        ("words", ["a", 1], "'words' must be list[str], got ['a', 1]"),
        ("weights", [1, True], "'weights' must be list[float], got [1, True]"),
        ("sets", ["a", "b"], "'sets' must be list[list[str]], got ['a', 'b']"),
        ("table", [1], "'table' must be table, got [1]"),
        ("tables", {"k": 1}, "'tables' must be list[table], got {'k': 1}"),
        ("limit", 1.5, "'limit' must be int, got 1.5"),
        ("name", 3, "'name' must be str or list[str], got 3"),
    ],
)
def test_each_type_is_refused_with_the_key(key, value, message):
    error = problem({key: value})
    assert str(error) == message and error.key == key
    assert error.problem == message.split(" ", 1)[1]


def test_unknown_renamed_and_invalid_keys():
    error = problem({"colour": 1})
    assert error.key == "colour" and error.problem.startswith("unknown key; known keys: anything,")
    error = problem({"colour": 1}, owner="searcher 'x'")
    assert error.problem.startswith("unknown option of searcher 'x'; options: anything, count")
    assert str(error).startswith("searcher 'x' has no option 'colour'; options:")
    error = problem({"old_text": "b"})
    assert (error.key, str(error)) == ("old_text", "'old_text' was renamed to 'text' (A string)")
    error = problem({"count": -1}, owner="searcher 'x'")
    assert (error.key, error.problem) == ("count", "must be 0 or more, got -1")
    assert str(error) == "searcher 'x': 'count' must be 0 or more, got -1"
    error = problem({"text": "table"})
    assert error.key is None and str(error) == "a problem of the whole table"
    assert str(problem([1])) == "must be a table, got list"


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), True, "1", None])
def test_counts_and_weights_must_be_finite_numbers_of_0_or_more(value):
    with pytest.raises(OptionError, match=r"must be 0 or more, got") as caught:
        require_non_negative(dataclasses.make_dataclass("W", [("w", Any)])(value), ["w"])
    assert caught.value.key == "w"


def test_the_range_checks_accept_what_they_name():
    options = dataclasses.make_dataclass("C", [("zero", int), ("half", float), ("one", int)])
    require_non_negative(options(0, 0.5, 1), ("zero", "half", "one"))
    require_positive(options(0, 0.5, 1), ["one"])
    with pytest.raises(OptionError, match="'zero' must be a positive integer, got 0"):
        require_positive(options(0, 0.5, 1), ["one", "zero"])


def test_defaults_are_fresh_copies_and_inputs_are_not_shared():
    first, second = Kinds(), Kinds()
    first.words.append("a")
    assert second.words == [] and second.names == ["x"]
    words = ["a"]
    config = read_options(Kinds, {"words": words})
    config.words.append("b")
    assert words == ["a"]


def test_describe_options():
    described = {d["name"]: d for d in describe_options(Kinds)}
    assert "old_text" not in described and "names" not in described
    assert described["name"] == {
        "name": "name",
        "type": "str or list[str]",
        "default": ["x"],
        "required": False,
        "help": "One name or a list.",
    }
    assert described["limit"]["type"] == "int" and described["limit"]["default"] is None
    assert [described[k]["type"] for k in ("sets", "table", "tables", "anything")] == [
        "list[list[str]]",
        "table",
        "list[table]",
        "any",
    ]
    json.dumps(describe_options(Kinds))  # plain data


def test_a_plug_ins_plain_dataclass_is_read_without_help():
    @dataclass
    class Plain:
        size: int
        label: str = "x"

    assert read_options(Plain, {"size": 2}) == Plain(2)
    assert "'size' must be int" in str(problem_of(Plain, {"size": "2"}))
    assert "size" in str(problem_of(Plain, {}))  # a required option left out
    assert [(d["name"], d["required"], d["help"]) for d in describe_options(Plain)] == [
        ("size", True, ""),
        ("label", False, ""),
    ]


def problem_of(cls: type, table: dict[str, Any]) -> OptionError:
    with pytest.raises(OptionError) as info:
        read_options(cls, table)
    return info.value


@pytest.mark.parametrize(
    "cls",
    [*SECTIONS.values(), *(c.config_class for c in SEARCHERS.values())],
    ids=[*SECTIONS, *SEARCHERS],
)
def test_every_option_has_a_one_line_help(cls):
    for field in dataclasses.fields(cls):
        help_text = field.metadata.get("help", "")
        assert help_text and "\n" not in help_text, f"{cls.__name__}.{field.name}"
        assert (help_text[0].isupper() or help_text[0] == '"') and help_text.endswith("."), (
            help_text
        )


# -- in a campaign file ---------------------------------------------------------------------------

HEAD = """\
[task]
name = "sst-2"

[[searchers]]
type = "manual"
templates = ["{text} It was"]
"""


def campaign_error(tmp_path, body: str, before: str = "") -> str:
    path = tmp_path / "c.toml"
    path.write_text(before + HEAD + textwrap.dedent(body), encoding="utf-8")
    with pytest.raises(PromptscoutError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    return message.removeprefix(str(path))


def test_table_errors_name_the_file_line_and_key(tmp_path):
    assert campaign_error(tmp_path, "\n[budget]\nminutes = 2\nexampels = 3\n") == (
        ":10: [budget] exampels: unknown key; known keys: candidates, dollars, examples, minutes"
    )
    assert campaign_error(tmp_path, "\n[racing]\nenabled = 1\n") == (
        ":9: [racing] enabled: must be bool, got 1"
    )
    assert campaign_error(tmp_path, "\n[racing]\nz = 1\nfactor = 1\n") == (
        ":10: [racing] factor: must be above 1, got 1.0"
    )
    assert campaign_error(tmp_path, '\n[model]\ndtype = "int8"\n').startswith(
        ":9: [model] dtype: must be float32, bfloat16 or float16"
    )
    assert campaign_error(tmp_path, "\n[objective]\nname = []\n").startswith(
        ":9: [objective] name: must be an objective name"
    )
    assert campaign_error(tmp_path, "", before="model = 3\n") == (
        ": [model]: must be a table, got int"
    )


def test_searcher_errors_name_the_file_line_and_key(tmp_path):
    body = '[[searchers]]\ntype = "evolutionary"\npopulation_size = 4\nalgorithm = "cma"\n'
    assert campaign_error(tmp_path, body) == (
        ":10: [searchers] algorithm: must be 'ga' or 'de', got 'cma'"
    )
    body = '[[searchers]]\ntype = "random"\nmax_demos = "2"\n'
    assert campaign_error(tmp_path, body) == ":9: [searchers] max_demos: must be int, got '2'"
    body = '[[searchers]]\ntype = "rl"\nlearning_rate = true\n'
    assert campaign_error(tmp_path, body) == (
        ":9: [searchers] learning_rate: must be float, got True"
    )


@pytest.mark.parametrize(
    ("searcher", "old", "value", "new"),
    [
        ("manual", "label_words", '[["bad", "good"]]', "label_word_sets"),
        ("random", "label_words", '[["bad"], ["good"]]', "label_word_candidates"),
        ("bayesian", "label_words", '[["bad"], ["good"]]', "label_word_candidates"),
        ("evolutionary", "label_words", '[["bad"], ["good"]]', "label_word_candidates"),
        ("bayesian", "start", '{ template = "{text} It was" }', "initial"),
        ("evolutionary", "tokens", '["great"]', "vocabulary"),
        ("evolutionary", "max_tokens", "2", "max_triggers"),
        ("rl", "tokens", "3", "num_triggers"),
        ("soft", "lr", "0.1", "learning_rate"),
    ],
)
def test_renamed_options_name_their_new_name(tmp_path, searcher, old, value, new):
    extra = 'templates = ["{text} It was"]\n' if searcher == "manual" else ""
    body = f'[[searchers]]\ntype = "{searcher}"\nname = "b"\n{extra}{old} = {value}\n'
    message = campaign_error(tmp_path, body)
    hint = next(d["help"] for d in describe_options(searcher_class(searcher).config_class)
                if d["name"] == new).split(" (")[0].rstrip(".")  # fmt: skip
    line = 11 if extra else 10
    assert message == f":{line}: [searchers] {old}: was renamed to '{new}' ({hint})"


def test_the_manual_rename_reads_as_documented(tmp_path):
    body = '[[searchers]]\ntype = "manual"\nname = "b"\nlabel_words = [["a", "b"]]\n'
    assert campaign_error(tmp_path, body).endswith(
        "label_words: was renamed to 'label_word_sets' "
        "(Alternative label-word lists, one word per class each)"
    )
    with pytest.raises(PromptscoutError, match="'lr' was renamed to 'learning_rate'"):
        build_config(searcher_class("soft"), {"lr": 0.1})


def test_stores_written_before_the_renames_still_resume(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(HEAD, encoding="utf-8")
    stored = load_config(path).to_dict()
    start = {"template": "{text} It was", "label_words": ["bad", "good"]}
    stored["searchers"] += [
        {"type": "bayesian", "options": {"start": start, "label_words": [["a"], ["b"]]}},
        {"type": "bayesian", "options": {"name": "b2", "start": {}}},
        {"type": "soft", "options": {"lr": 0.1}, "line": 12},
        {"type": "rl", "options": {"tokens": 3}},
        {"type": "evolutionary", "options": {"tokens": ["a"], "max_tokens": 2}},
        {"type": "manual", "options": {"name": "m2", "templates": ["{text}"], "label_words": []}},
    ]
    config = CampaignConfig.from_dict(json.loads(json.dumps(stored)))
    assert [s.options for s in config.searchers[1:]] == [
        {"initial": [start], "label_word_candidates": [["a"], ["b"]]},
        {"name": "b2", "initial": []},
        {"learning_rate": 0.1},
        {"num_triggers": 3},
        {"vocabulary": ["a"], "max_triggers": 2},
        {"name": "m2", "templates": ["{text}"], "label_word_sets": []},
    ]
    for spec in config.searchers:
        build_config(searcher_class(spec.type), spec.options)
    assert config.searchers[3].line == 12
    assert upgrade_options(Kinds, {"old_text": "b", "count": 2}) == {"count": 2, "text": "b"}


# -- plugins and the README -----------------------------------------------------------------------


def test_plugins_json_lists_every_option(capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(SEARCHERS) <= set(data["searchers"])
    options = {d["name"]: d for d in data["searchers"]["soft"]["options"]}
    assert options["learning_rate"] == {
        "name": "learning_rate",
        "type": "float",
        "default": 0.003,
        "required": False,
        "help": "Adam's step size.",
    }
    assert list(data["sections"]) == list(SECTIONS)
    budget = {d["name"]: d["default"] for d in data["sections"]["budget"]}
    assert budget == {"examples": 20000, "minutes": None, "candidates": None, "dollars": None}


def test_plugins_prints_one_table_of_options(capsys):
    assert main(["plugins", "--options", "rl"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('[[searchers]] type = "rl"') and "num_triggers" in out
    assert main(["plugins", "--options", "racing"]) == 0
    assert "first" in capsys.readouterr().out
    assert main(["plugins", "--options", "genetic"]) == 2
    assert "no options table 'genetic'" in capsys.readouterr().err
    assert main(["plugins"]) == 0
    assert len(capsys.readouterr().out.splitlines()) < 10  # the plain listing stays short


def test_the_readme_options_reference_is_generated_from_the_code():
    text = README.read_text(encoding="utf-8")
    start, end = text.find(REFERENCE_START), text.find(REFERENCE_END)
    assert 0 <= start < end, "README.md lacks the options-reference markers"
    block = text[start : end + len(REFERENCE_END)] + "\n"
    assert block == options_reference(), (
        "README.md's options reference differs from the code's option declarations; "
        "regenerate it with: .venv/bin/promptscout plugins --markdown README.md"
    )


def test_markdown_rewrites_only_the_reference_block(tmp_path, capsys):
    path = tmp_path / "doc.md"
    path.write_text(f"# Doc\n\n{REFERENCE_START}\nstale\n{REFERENCE_END}\n\nafter\n")
    assert main(["plugins", "--markdown", str(path)]) == 0
    assert path.read_text() == f"# Doc\n\n{options_reference()}\nafter\n"
    assert main(["plugins", "--markdown"]) == 0
    assert capsys.readouterr().out == options_reference()
    path.write_text("no markers\n")
    assert main(["plugins", "--markdown", str(path)]) == 2
