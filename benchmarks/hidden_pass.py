"""The learned verbalizer's inputs in one pass vs two: label scores and the hidden state where the
label word is read, from the shared-prefix engine's scoring pass
(``score_labels_and_hidden``) against scoring plus the plain hidden-state forward, on the same
256 SST-2 test texts (a prompt with an instruction and two demonstrations), twice.

    .venv/bin/python benchmarks/hidden_pass.py
"""

from __future__ import annotations

import time

from promptscout.model import load_model
from promptscout.prompts import Prompt
from promptscout.tasks.loading import load_task


def main() -> None:
    model = load_model("smollm2-135m-instruct")
    task = load_task("sst-2", seed=42)
    demos = tuple(e.id for e in task.train[:2])
    prompt = Prompt("Review: {text}\nSentiment:", ("negative", "positive"),
                    instruction="Classify the review.", demos=demos)  # fmt: skip
    shown = [task.example(i) for i in prompt.demos]
    texts = [prompt.render(e, shown) for e in task.test[:256]]
    model.score_labels(texts[:16], prompt.label_words)  # warm-up
    for _ in range(2):
        started = time.perf_counter()
        scores = model.score_labels(texts, prompt.label_words)
        hidden = model.hidden_states(texts)
        two = time.perf_counter() - started
        started = time.perf_counter()
        scores_1, hidden_1 = model.score_labels_and_hidden(texts, prompt.label_words)
        one = time.perf_counter() - started
        gaps = abs(scores - scores_1).max(), abs(hidden - hidden_1).max()
        print(f"two passes {two:.1f} s, one pass {one:.1f} s ({two / one:.2f}x); max difference: "
              f"scores {gaps[0]:.1e}, hidden {gaps[1]:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
