"""Integration: the embedded SmolLM2-135M-Instruct, real data, small subsets.

The first run converts the GGUF file to the safetensors cache (~20 s); later runs load in ~1 s.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptscout.cli import main
from promptscout.model import EMBEDDED_MODEL_NAME, load_model
from promptscout.tasks import load_task

pytestmark = pytest.mark.integration

TEMPLATE = "Review: {text}\nSentiment:"


@pytest.fixture(scope="module")
def smollm():
    return load_model(EMBEDDED_MODEL_NAME)


def plain_transformers_log_probs(model, texts, words):
    """An independent reference: one forward per text, full logits, first-token label ids."""
    import torch

    hf, tokenizer = model.hf_model, model.tokenizer
    ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
    rows = []
    with torch.no_grad():
        for text in texts:
            inputs = tokenizer(text, return_tensors="pt")
            logits = hf(**inputs).logits[0, -1].float()
            rows.append(torch.log_softmax(logits, dim=-1)[ids].numpy())
    return np.array(rows)


def test_engine_matches_plain_transformers(smollm):
    task = load_task("sst-2")
    texts = [TEMPLATE.format(text=e.fields["text"]) for e in task.dev[:12]]
    ours = smollm.score_labels(texts, ["negative", "positive"])
    reference = plain_transformers_log_probs(smollm, texts, ["negative", "positive"])
    assert np.abs(ours - reference).max() < 1e-4


def test_evaluate_cli_reports_accuracy(capsys, smollm):
    code = main(
        [
            "evaluate",
            "--task",
            "sst-2",
            "--template",
            "Review: {text}\\nSentiment:",
            "--label-words",
            "negative,positive",
            "--split",
            "dev",
            "--json",
            "--quiet",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    task = load_task("sst-2")
    texts = [TEMPLATE.format(text=e.fields["text"]) for e in task.dev]
    reference = plain_transformers_log_probs(smollm, texts, ["negative", "positive"])
    expected = float((reference.argmax(axis=1) == [e.label for e in task.dev]).mean())
    assert code == 0 and result["examples"] == 32
    assert result["accuracy"] == pytest.approx(expected, abs=1e-9)


def test_small_campaign_on_the_embedded_model(capsys, tmp_path):
    campaign = tmp_path / "c.toml"
    campaign.write_text(f"""
[campaign]
name = "smoke"
store = "{tmp_path / "smoke.db"}"
[task]
name = "sst-2"
holdout_split = "train"
[budget]
examples = 96
[leaderboard]
top_k = 1
[[searchers]]
type = "manual"
templates = ["Review: {{text}}\\nSentiment:", "{{text}} It was"]
label_word_sets = [["negative", "positive"], ["terrible", "great"]]
""")
    assert main(["run", str(campaign)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path / "smoke.db"), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    # 96 examples: the first turn scores one prompt on all 32 (nothing to race against yet), the
    # budget then allows two more, raced against it; one is stopped on the first minibatch.
    assert len(entries) == 2 and entries[0]["test"]["accuracy"] > 0.5
