"""Does `promptscout evaluate` agree with an independent plain-transformers script?

The reference below shares no code with promptscout's model core: it loads the converted
safetensors folder with `AutoModelForCausalLM`, runs one forward per example with full logits,
and compares the log-probabilities of the first token of " negative" and " positive" at the last
position. Run:

    .venv/bin/python benchmarks/agreement.py

It scores all 1,821 SST-2 test examples both ways (about 5 minutes on 2 cores) and prints both
accuracies, their difference, and the time each took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

TEMPLATE = "Review: {text}\nSentiment:"
WORDS = ["negative", "positive"]


def reference_accuracy() -> tuple[float, int, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from promptscout.model.embedded import embedded_model_dir
    from promptscout.tasks import load_task

    folder = embedded_model_dir()  # the safetensors cache (converted once from the GGUF file)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return plain_accuracy(model, tokenizer, load_task("sst-2").test)


def plain_accuracy(model, tokenizer, examples) -> tuple[float, int, float]:  # noqa: ANN001
    """(accuracy, examples, seconds) of ``TEMPLATE`` with ``WORDS`` by one plain forward per
    example: the first token of each word at the last position, the larger one wins."""
    import torch

    ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in WORDS]
    correct = 0
    started = time.perf_counter()
    with torch.no_grad():
        for example in examples:
            text = TEMPLATE.replace("{text}", example.fields["text"])
            logits = model(**tokenizer(text, return_tensors="pt")).logits[0, -1]
            correct += int(int(torch.argmax(logits[ids])) == example.label)
    return correct / len(examples), len(examples), time.perf_counter() - started


def promptscout_accuracy() -> tuple[float, int, float]:
    command = [
        sys.executable,
        "-m",
        "promptscout",
        "evaluate",
        "--task",
        "sst-2",
        "--template",
        "Review: {text}\\nSentiment:",
        "--label-words",
        ",".join(WORDS),
        "--split",
        "test",
        "--json",
        "--quiet",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    return result["accuracy"], result["examples"], result["seconds"]


def main() -> None:
    ours, n_ours, t_ours = promptscout_accuracy()
    ref, n_ref, t_ref = reference_accuracy()
    print(
        f"promptscout evaluate: accuracy {ours:.4f} on {n_ours} examples, {t_ours:.1f} s "
        f"({n_ours / t_ours:.1f} ex/s)"
    )
    print(
        f"plain transformers:   accuracy {ref:.4f} on {n_ref} examples, {t_ref:.1f} s "
        f"({n_ref / t_ref:.1f} ex/s)"
    )
    print(f"difference: {abs(ours - ref):.4f}")


if __name__ == "__main__":
    main()
