from __future__ import annotations

import textwrap

import pytest

from promptscout.config import CampaignConfig, load_config
from promptscout.errors import PromptscoutError

GOOD = """\
[campaign]
name = "demo"
seed = 3

[task]
name = "sst-2"
label_words = ["terrible", "great"]

[objective]
name = ["accuracy", "prompt_length"]
weights = [1, 0.001]

[budget]
examples = 640

[[searchers]]
type = "manual"
templates = ["{text} It was"]

[[searchers]]
type = "random"
max_demos = 2
"""


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(PromptscoutError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_config_and_defaults(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.name == "demo" and config.seed == 3
    assert config.task.spec == "sst-2" and config.task.split_seed == 42
    assert config.objective.weights == [1.0, 0.001]
    assert config.budget.examples == 640 and config.budget.minutes is None
    assert config.model.name == "smollm2-135m-instruct"
    assert [s.type for s in config.searchers] == ["manual", "random"]
    assert config.searchers[1].line == 20 and config.searchers[1].options == {"max_demos": 2}
    assert str(config.store_path) == "runs/demo.db" and config.export_path.name == "demo.json"
    assert CampaignConfig.from_dict(config.to_dict()) == config


def test_malformed_toml_names_the_line(tmp_path):
    message = error_of(tmp_path, GOOD.replace("seed = 3", "seed = = 3"))
    assert "c.toml: invalid TOML" in message and "line 3" in message


def test_unknown_key_names_table_key_and_line(tmp_path):
    message = error_of(tmp_path, GOOD.replace("examples = 640", "exampels = 640"))
    assert message.startswith(f"{tmp_path / 'c.toml'}:14: [budget] exampels: unknown key")
    assert "examples" in message


def test_unknown_table(tmp_path):
    assert "[modle]: unknown table" in error_of(tmp_path, GOOD + "\n[modle]\nname = 'x'\n")


def test_wrong_types_and_values(tmp_path):
    assert ":14: [budget] examples: must be int" in error_of(
        tmp_path, GOOD.replace("examples = 640", 'examples = "640"')
    )
    assert ":14: [budget] examples: must be a positive" in error_of(
        tmp_path, GOOD.replace("examples = 640", "examples = -5")
    )
    assert "[objective] weights: must be 2 numbers" in error_of(
        tmp_path, GOOD.replace("[1, 0.001]", "[1]")
    )


def test_task_needs_exactly_one_source(tmp_path):
    assert "[task]: give exactly one of 'name'" in error_of(
        tmp_path, GOOD.replace('name = "sst-2"', 'name = "sst-2"\npath = "data/x"')
    )


def test_unknown_searcher_type_and_option(tmp_path):
    message = error_of(tmp_path, GOOD.replace('type = "random"', 'type = "genetic"'))
    assert ":21: [searchers] type: unknown searcher type 'genetic'" in message
    message = error_of(tmp_path, GOOD.replace("max_demos = 2", "max_demo = 2"))
    assert ":22: [searchers] max_demo: unknown option of searcher 'random'" in message


def test_nearest_demos_need_the_local_evaluator(tmp_path):
    ray = GOOD + '\n[evaluator]\ntype = "ray"\n'
    load_config(write(tmp_path, ray))  # fine without nearest-neighbour demonstrations
    message = error_of(tmp_path, ray.replace("max_demos = 2", "max_demos = 2\nnearest_demos = 2"))
    assert ":23: [searchers] nearest_demos: nearest-neighbour demonstrations" in message
    assert '[evaluator] type = "local"' in message
    manual = ray.replace(
        'templates = ["{text} It was"]', 'templates = ["{text}"]\nnearest_demos = [0, 2]'
    )
    assert ":19: [searchers] nearest_demos" in error_of(tmp_path, manual)
    load_config(write(tmp_path, manual.replace("[0, 2]", "[0]")))
    peft = ray + '\n[[searchers]]\ntype = "peft"\nmethod = "lora"\nnearest_demos = 2\n'
    assert ":30: [searchers] nearest_demos: nearest-neighbour" in error_of(tmp_path, peft)
    load_config(write(tmp_path, peft.replace("nearest_demos = 2", "demos = 2")))


def test_searcher_needs_a_type_and_distinct_names(tmp_path):
    assert "missing 'type'" in error_of(tmp_path, GOOD.replace('type = "random"\n', ""))
    assert "two searchers are named 'manual'" in error_of(
        tmp_path,
        GOOD.replace('type = "random"\nmax_demos = 2', 'type = "manual"\ntemplates = ["{text}"]'),
    )


def test_a_file_without_searchers_runs_the_default_mix(tmp_path):
    # Its own [budget] (640 examples) is kept; the default mix adds ensembles and the searchers.
    config = load_config(write(tmp_path, GOOD.split("[[searchers]]")[0]))
    assert config.default_mix and config.searchers == []
    assert config.budget.examples == 640 and config.budget.minutes is None
    assert config.leaderboard.top_k == 4 and config.leaderboard.ensembles == ["average", "weighted"]
    bare = load_config(write(tmp_path, '[task]\nname = "agnews"\n'))
    assert bare.default_mix and bare.budget.minutes == 10 and bare.budget.examples is None
    assert bare.leaderboard.rescore_minutes == 3 and config.leaderboard.rescore_minutes == 3
    own = load_config(write(tmp_path, '[task]\nname = "mr"\n[leaderboard]\nrescore_minutes = 1\n'))
    assert own.leaderboard.rescore_minutes == 1


def test_unreadable_files(tmp_path):
    with pytest.raises(PromptscoutError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    path = tmp_path / "bad.toml"
    path.write_bytes(b'[campaign]\nname = "\xff"\n')
    with pytest.raises(PromptscoutError, match="not UTF-8"):
        load_config(path)


def test_min_train_is_checked_in_the_file_and_when_the_task_loads(tmp_path):
    text = GOOD.replace('name = "sst-2"\n', 'name = "sst-2"\nmin_train = -1\n')
    assert ":7: [task] min_train: must be" in error_of(tmp_path, text)
    config = load_config(write(tmp_path, text.replace("-1", "48")))
    task = config.task.load()
    assert (len(task.train), len(task.dev)) == (48, 16)
    too_many = load_config(write(tmp_path, text.replace("-1", "63")))
    with pytest.raises(PromptscoutError, match=r"min_train = 63: .* use min_train = 62 or less"):
        too_many.task.load()
