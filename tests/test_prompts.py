from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt, continuation, fill_template, template_fields
from promptscout.tasks import Example


def ex(text: str, label: int = 0, id: str = "dev-0") -> Example:
    return Example(id, {"text": text}, label)


def test_render_fills_fields_and_keeps_label_slot_out():
    prompt = Prompt("Review: {text}\nSentiment:", ("negative", "positive"))
    assert prompt.render(ex("a fine film")) == "Review: a fine film\nSentiment:"
    assert Prompt("{text} It was [P]", ("bad", "good")).render(ex("x")) == "x It was "


def test_render_with_instruction_demos_and_triggers():
    prompt = Prompt(
        "{text}[T][T] was",
        ("bad", "good"),
        instruction="Rate it.",
        triggers=(" so", " it"),
        separator="\n",
    )
    demo = ex("great fun", 1, "train-3")
    assert prompt.render(ex("dull"), [demo]) == "Rate it.\ngreat fun so it was good\ndull so it was"


def test_values_are_never_reparsed():
    prompt = Prompt("{text} [T]:", ("a", "b"), triggers=("{text}",))
    value = "{text} [T] {__class__} {0}"
    assert prompt.render(ex(value)) == value + " {text}:"


def test_escaped_and_lone_braces():
    assert fill_template("{{x}} {text} } {", {"text": "v"}) == "{x} v } {"
    assert template_fields("{a} {{b}} {c.d} {e[0]} {a}") == ("a",)


@given(st.text(), st.text())
def test_rendering_is_literal_for_any_template_and_value(template: str, value: str):
    fields = template_fields(template)
    filled = fill_template(template, {name: value for name in fields})
    assert isinstance(filled, str)
    if not fields and "{" not in template and "}" not in template and "[T]" not in template:
        assert filled == template


def test_attribute_and_index_access_are_plain_text():
    out = fill_template("{text.__class__} {text[0]} {text}", {"text": "v"})
    assert out == "{text.__class__} {text[0]} v"


def test_validation_errors():
    with pytest.raises(PromptscoutError, match="no input field"):
        Prompt("Sentiment:", ("a", "b"))
    with pytest.raises(PromptscoutError, match="1 \\[T\\] slot"):
        Prompt("{text} [T]", ("a", "b"))
    with pytest.raises(PromptscoutError, match="repeat"):
        Prompt("{text}", ("good", "good"))
    with pytest.raises(PromptscoutError, match="empty"):
        Prompt("{text}", ("good", " "))


def test_key_is_stable_and_ignores_metadata():
    a = Prompt("{text} It was", ("bad", "good"), metadata={"searcher": "x"})
    b = Prompt("{text} It was", ["bad", "good"])
    assert a == b and hash(a) == hash(b) and a.key == b.key and len(a.key) == 16
    assert Prompt("{text} It was", ("bad", "great")).key != a.key


def test_json_round_trip():
    prompt = Prompt(
        "{text} [T]",
        ("bad", "good"),
        "Do it.",
        ("train-1",),
        (" so",),
        "\n",
        {"searcher": "random"},
    )
    again = Prompt.from_dict(json.loads(json.dumps(prompt.to_dict())))
    assert again == prompt and again.metadata == {"searcher": "random"}
    with pytest.raises(PromptscoutError, match="unknown prompt key"):
        Prompt.from_dict({"template": "{text}", "bogus": 1})


def test_continuation_spacing():
    assert continuation("Sentiment:", "positive") == " positive"
    assert continuation("Sentiment:\n", "positive") == "positive"
    assert continuation("x", " positive") == " positive"


def test_frame_is_the_prompt_without_inputs():
    prompt = Prompt("Review: {text}\nSentiment:", ("a", "b"), instruction="Judge.")
    assert prompt.render_frame() == "Judge.\n\nReview: \nSentiment:"
