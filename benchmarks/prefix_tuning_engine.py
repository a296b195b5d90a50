"""Scoring after a prefix-tuning adapter: the shared-prefix engine against PEFT's own forward.

On the embedded SmolLM2-135M-Instruct (float32, CPU) and SST-2 test sentences in
``Review: {text}\\nSentiment:`` (label words negative/positive), a prefix-tuning adapter of
``--virtual`` (20) virtual tokens, PEFT's own random initialisation under a fixed seed, is
scored two ways in one run:

(a) PEFT: ``PeftModelForCausalLM`` over right-padded batches of ``batch_size`` rows (sorted by
    length, so that padding is small), full logits, ``log_softmax`` at the label positions;
(b) the engine: ``CausalLM.score_labels_kv`` with the adapter's saved ``prompt_embeddings``
    converted by ``promptscout.model.kv_prefix.peft_prefix_to_kv``.

Both arms score the same id rows (``CausalLM._label_rows`` with the virtual positions
reserved). It prints examples/s of each arm, their ratio and the largest absolute difference
between their class log-probabilities, and writes ``benchmarks/results/prefix_tuning_engine.json``
(with the machine's load average: on a shared machine, other processes slow both arms). Run:

    .venv/bin/python benchmarks/prefix_tuning_engine.py [--n 256] [--virtual 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import PrefixTuningConfig, get_peft_model, get_peft_model_state_dict

from promptscout.model import load_model
from promptscout.model.kv_prefix import kv_shape, peft_prefix_to_kv
from promptscout.prompts import Prompt
from promptscout.tasks import load_task

RESULTS = Path(__file__).resolve().parent / "results" / "prefix_tuning_engine.json"
PROMPT = Prompt("Review: {text}\nSentiment:", ("negative", "positive"))


def peft_scores(model: Any, peft_model: Any, texts: list[str], virtual: int) -> np.ndarray:
    """Class log-probabilities from PEFT's forward over right-padded batches of the rows the
    engine scores (the same ids, the same label positions)."""
    rows, picks = model._label_rows(texts, list(PROMPT.label_words), reserve=virtual)
    out = np.zeros((len(texts), len(PROMPT.label_words)))
    order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
    with torch.inference_mode():
        for first in range(0, len(order), model.batch_size):
            batch = order[first : first + model.batch_size]
            ids, mask = model._pad([rows[r] for r in batch])
            logits = peft_model(input_ids=ids, attention_mask=mask).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for b, r in enumerate(batch):
                for pos, token, i, c in picks[r]:
                    out[i, c] += float(logp[b, pos, token])
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = load_model("smollm2-135m-instruct")
    task = load_task("sst-2")
    texts = [PROMPT.render(e) for e in task.test[: args.n]]
    words = list(PROMPT.label_words)
    torch.manual_seed(args.seed)  # PEFT's initialisation of the prefix
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=args.virtual)
    peft_model = get_peft_model(copy.deepcopy(model.hf_model), config).eval()
    saved = get_peft_model_state_dict(peft_model)["prompt_embeddings"].float().numpy()
    layers, kv_heads, head_dim = kv_shape(model.hf_model.config)
    kv = peft_prefix_to_kv(saved, layers=layers, kv_heads=kv_heads, head_dim=head_dim)

    model.score_labels_kv(texts[:16], words, kv)  # warm-up, both arms
    peft_scores(model, peft_model, texts[:16], args.virtual)
    load_before = os.getloadavg()
    started = time.perf_counter()
    theirs = peft_scores(model, peft_model, texts, args.virtual)
    peft_seconds = time.perf_counter() - started
    forwarded, computed = model.tokens_forwarded, model.tokens_computed
    started = time.perf_counter()
    ours = model.score_labels_kv(texts, words, kv)
    engine_seconds = time.perf_counter() - started
    load_after = os.getloadavg()
    return {
        "model": model.name,
        "task": "sst-2",
        "template": PROMPT.template,
        "label_words": words,
        "examples": len(texts),
        "virtual_tokens": args.virtual,
        "seed": args.seed,
        "batch_size": model.batch_size,
        "kv_shape": [layers, 2, kv_heads, args.virtual, head_dim],
        "peft": {"seconds": round(peft_seconds, 3), "ex_per_s": len(texts) / peft_seconds},
        "engine": {
            "seconds": round(engine_seconds, 3),
            "ex_per_s": len(texts) / engine_seconds,
            "tokens_forwarded": model.tokens_forwarded - forwarded,
            "tokens_computed": model.tokens_computed - computed,
            "lean_pass": model._fast is not None,
        },
        "speedup": peft_seconds / engine_seconds,
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "agreement": float(np.mean(ours.argmax(1) == theirs.argmax(1))),
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{report['examples']} SST-2 texts, {report['virtual_tokens']} virtual tokens, "
        f"batch size {report['batch_size']}"
    )
    print(f"{'arm':8} {'seconds':>8} {'ex/s':>8}")
    for arm in ("peft", "engine"):
        print(f"{arm:8} {report[arm]['seconds']:>8.2f} {report[arm]['ex_per_s']:>8.1f}")
    print(
        f"engine / PEFT: {report['speedup']:.2f}x; max |difference| of the scores "
        f"{report['max_abs_diff']:.1e}; argmax agreement {report['agreement']:.3f}; "
        f"load average {report['loadavg_before'][0]:.2f} -> {report['loadavg_after'][0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="prefix tuning: the engine vs PEFT's forward")
    parser.add_argument("--n", type=int, default=256, help="SST-2 test texts")
    parser.add_argument("--virtual", type=int, default=20, help="virtual tokens of the prefix")
    parser.add_argument("--seed", type=int, default=0, help="seed of PEFT's initialisation")
    args = parser.parse_args()
    report = run(args)
    print_table(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
