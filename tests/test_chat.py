"""Chat rendering: the instruction as the system message, demonstrations as earlier turns, the
label word scored as the start of the assistant's reply; in-process models apply their chat
template (the served backend sends the messages, see test_served.py)."""

from __future__ import annotations

import numpy as np
import pytest

from promptscout.errors import PromptscoutError
from promptscout.evaluation.local import LocalEvaluator
from promptscout.model import load_model
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt, chat_messages, chat_text
from promptscout.tasks import load_task

TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:\n{% endif %}"
)


@pytest.fixture
def chat_model(tiny_causal_dir):
    model = load_model(str(tiny_causal_dir))
    model.tokenizer.chat_template = TEMPLATE
    model.chat = True
    return model


def test_messages_put_the_instruction_first_and_demos_as_turns(tiny_task_dir):
    task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
    prompt = Prompt("Review: {text}", ("bad", "good"), instruction="Judge.", demos=("train-1",))
    demo = task.example("train-1")
    messages = prompt.messages(task.dev[0], [demo])
    assert messages == [
        {"role": "system", "content": "Judge."},
        {"role": "user", "content": f"Review: {demo.fields['text']}"},
        {"role": "assistant", "content": ("bad", "good")[demo.label]},
        {"role": "user", "content": f"Review: {task.dev[0].fields['text']}"},
    ]
    assert chat_messages(chat_text(messages)) == messages
    assert chat_messages("a plain text") is None


def test_an_in_process_chat_model_scores_through_its_template(chat_model, tiny_task_dir):
    task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
    prompt = Prompt("Review: {text}", ("bad", "good"), instruction="Judge.", demos=("train-0",))
    evaluator = LocalEvaluator(chat_model, task, [resolve_objective("accuracy")])
    (evaluation,) = evaluator.evaluate([prompt], "dev")
    demos = [task.example("train-0")]
    plain = [
        chat_model.tokenizer.apply_chat_template(
            prompt.messages(e, demos), tokenize=False, add_generation_prompt=True
        )
        for e in task.dev
    ]
    assert plain[0].endswith("assistant:\n") and "system: Judge." in plain[0]
    chat_model.chat = False  # the same texts scored as plain text give the same numbers
    expected = chat_model.score_labels(plain, prompt.label_words)
    assert np.allclose(evaluation.outputs, expected, atol=1e-6)


def test_a_model_without_a_chat_template_says_so(tiny_causal):
    with pytest.raises(PromptscoutError, match="has no chat template; set \\[model\\] chat"):
        tiny_causal.score_labels([chat_text([{"role": "user", "content": "x"}])], ["good"])
