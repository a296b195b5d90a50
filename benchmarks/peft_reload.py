"""Do exported adapters give, in plain transformers + PEFT, the accuracy promptscout reports?

For each method (``lora`` and ``prefix_tuning`` by default) a campaign with that one ``peft``
searcher trains on SST-2 (split seed 42, ``Review: {text}\\nSentiment:``, negative/positive,
early stopping on dev), ``promptscout export`` writes its pick as a PEFT adapter folder, and
``promptscout evaluate --prompt EXPORT --rank 1 --split test`` scores it on all test examples.
The reference below shares no code with promptscout's scoring: it loads the embedded model's
safetensors folder with ``AutoModelForCausalLM``, the folder with
``PeftModel.from_pretrained``, runs one forward per example and compares the first tokens of
" negative" and " positive" at the last position. Run:

    .venv/bin/python benchmarks/peft_reload.py [--methods lora,prefix_tuning] [--epochs 8]

About 10 minutes per method on 2 CPU cores. Writes benchmarks/results/peft_reload.json and prints
both accuracies per method with their difference (the goal: within 0.2 points).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agreement import plain_accuracy
from common import RESULTS

CAMPAIGN = """
[campaign]
name = "peft-reload-{method}"
seed = 42
store = "{store}"

[model]
name = "smollm2-135m-instruct"

[task]
name = "sst-2"
split_seed = 42
label_words = ["negative", "positive"]

[objective]
name = ["cross_entropy", "accuracy"]

[budget]
examples = 100000
minutes = 30

[leaderboard]
top_k = 1
ensembles = []

[[searchers]]
type = "peft"
method = "{method}"
template = "Review: {{text}}\\nSentiment:"
max_epochs = {epochs}
"""


def promptscout(*args: str) -> str:
    """Run the CLI; its stdout."""
    command = [sys.executable, "-m", "promptscout", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def reference_accuracy(folder: Path) -> tuple[float, int, float]:
    """Plain transformers + PEFT: the adapter folder on the embedded model, one forward per
    test example."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from promptscout.model.embedded import embedded_model_dir
    from promptscout.tasks import load_task

    base_dir = embedded_model_dir()  # the safetensors cache (converted once from the GGUF file)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(folder)).eval()
    return plain_accuracy(model, tokenizer, load_task("sst-2", seed=42).test)


def run_method(method: str, epochs: int, folder: Path) -> dict[str, Any]:
    store = folder / f"{method}.db"
    campaign = folder / f"{method}.toml"
    campaign.write_text(CAMPAIGN.format(method=method, store=store, epochs=epochs))
    started = time.perf_counter()
    promptscout("run", str(campaign))
    campaign_seconds = time.perf_counter() - started
    export = folder / f"{method}-export.json"
    promptscout("export", str(store), "-o", str(export))
    payload = json.loads(export.read_text())
    digest = payload["entries"][0]["prompt"]["soft"]
    adapter = export.parent / payload["adapters"]["folders"][digest]
    started = time.perf_counter()
    ours = json.loads(
        promptscout(
            "evaluate",
            "--prompt",
            str(export),
            "--rank",
            "1",
            "--split",
            "test",
            "--json",
            "--quiet",
        )  # fmt: skip
    )
    ours_seconds = time.perf_counter() - started
    reference, n, reference_seconds = reference_accuracy(adapter)
    return {
        "method": method,
        "adapter_files": sorted(p.name for p in adapter.iterdir()),
        "adapter_config": json.loads((adapter / "adapter_config.json").read_text()),
        "campaign_seconds": round(campaign_seconds, 1),
        "promptscout_accuracy": ours["accuracy"],
        "promptscout_seconds": round(ours_seconds, 1),
        "reference_accuracy": reference,
        "reference_seconds": round(reference_seconds, 1),
        "examples": n,
        "difference_points": round(100 * (ours["accuracy"] - reference), 3),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="exported adapters in plain PEFT")
    parser.add_argument("--methods", default="lora,prefix_tuning")
    parser.add_argument("--epochs", type=int, default=8, help="at most this many epochs")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="peft-reload-") as tmp:
        for method in args.methods.split(","):
            print(f"== {method}", file=sys.stderr, flush=True)
            rows.append(run_method(method, args.epochs, Path(tmp)))
            row = rows[-1]
            print(
                f"{method}: promptscout {row['promptscout_accuracy']:.4f}, plain PEFT "
                f"{row['reference_accuracy']:.4f} ({row['difference_points']:+.2f} points, "
                f"{row['examples']} test examples)",
                flush=True,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peft_reload.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
