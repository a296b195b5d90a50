"""Scoring throughput: promptscout's engine against a plain transformers loop, in one run.

Run (``make bench`` runs it too):

    .venv/bin/python benchmarks/throughput.py [--examples 200] [--plain-examples 200]

On the embedded SmolLM2-135M-Instruct (float32, CPU), with SST-2 test sentences, it times

(a) the plain loop: one ``hf_model(**tokenizer(text, return_tensors="pt")).logits`` forward per
    example (full logits), ``log_softmax`` at the last position, the label ids gathered; a label
    word of several tokens gets one teacher-forced forward per (text, word);
(b) the engine: ``LanguageModel.score_labels`` over all the texts at once;

on three scenarios:

1. zero-shot prompts (``Review: {text}\\nSentiment:`` negative/positive and ``{text} It was``
   terrible/great);
2. one prompt with four demonstrations from the SST-2 training sentences (a shared prefix of
   100+ tokens) before ``Review: {text}\\nSentiment:``;
3. twenty input-first prompts (``{text} w1 w2 w3 w4 It was``, random trigger words) on the same
   examples: the engine scoring all candidates in one call against one call per candidate.

For each it prints examples/s of each arm and their ratio, the engine's achieved GFLOP/s against
the fp32 matmul peak measured in the same run (the best of repeated 2048x2048 ``torch.mm``, taken
at the start and again at the end: the higher counts), the peak resident memory so far
(``ru_maxrss``), and the largest absolute difference between the arms' class log-probabilities.
The machine's load average is printed too: on a shared machine, other processes slow both arms.
Results also go to ``benchmarks/results/throughput.json``.

FLOPs of the engine are counted from the forward passes it actually runs (padding excluded), by
the model's own counter ``LanguageModel.flops`` (see ``promptscout.model.base.flop_rates``):

    FLOPs = sum over computed tokens of (2 * N_body + 4 * layers * heads * head_dim * c)
            + 2 * hidden * vocab * (output-head rows)

where ``N_body`` is the parameter count without the embedding and output matrices and ``c`` the
number of positions the token attends (its absolute position + 1). A shared prefix counts once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from promptscout.model import continuation, load_model
from promptscout.tasks import load_task

RESULTS = Path(__file__).parent / "results" / "throughput.json"
ZERO_SHOT = [
    ("Review: {text}\nSentiment:", ["negative", "positive"]),
    ("{text} It was", ["terrible", "great"]),
]
DEMO_TEMPLATE = "Review: {text}\nSentiment:"
DEMO_WORDS = ["negative", "positive"]
TRIGGER_WORDS = [
    "movie", "film", "story", "really", "truly", "overall", "honestly", "simply", "quite",
    "acting", "plot", "scene", "review", "critic", "audience", "watch", "felt", "seems", "very",
    "totally", "ending", "cast", "moment", "director", "script", "feeling", "whole", "just",
]  # fmt: skip


def matmul_peak(repeats: int = 12, size: int = 2048) -> float:
    """Best fp32 GFLOP/s of a ``size x size`` matrix product on this machine, now."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def plain_loop(hf_model, tokenizer, texts: list[str], words: list[str]) -> np.ndarray:
    """The plain transformers way: one forward per example, full logits, no batching."""
    out = np.zeros((len(texts), len(words)))
    with torch.no_grad():
        for i, text in enumerate(texts):
            inputs = tokenizer(text, return_tensors="pt")
            logp = torch.log_softmax(hf_model(**inputs).logits[0, -1].double(), -1)
            for c, word in enumerate(words):
                ids = tokenizer(continuation(text, word), add_special_tokens=False)["input_ids"]
                if len(ids) == 1:
                    out[i, c] = float(logp[ids[0]])
                    continue
                full = torch.cat([inputs["input_ids"][0], torch.tensor(ids)]).unsqueeze(0)
                logits = hf_model(input_ids=full, attention_mask=torch.ones_like(full)).logits
                lp = torch.log_softmax(logits[0].double(), -1)
                start = inputs["input_ids"].shape[1] - 1
                out[i, c] = sum(float(lp[start + j, t]) for j, t in enumerate(ids))
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def engine_arm(model, calls: list[tuple[list[str], list[str]]]) -> dict:
    """Time the engine on ``calls`` ((texts, words) each); returns scores and counters."""
    flops, computed, forwarded = model.flops, model.tokens_computed, model.tokens_forwarded
    scores, seconds = timed(lambda: [model.score_labels(t, w) for t, w in calls])
    return {
        "scores": scores,
        "seconds": seconds,
        "flops": model.flops - flops,
        "tokens_computed": model.tokens_computed - computed,
        "tokens_forwarded": model.tokens_forwarded - forwarded,
    }


def demo_prefix(task, rng: random.Random) -> str:
    """Four demonstrations from the training sentences (two of each class, shuffled)."""
    by_label = {
        0: [e for e in task.train if e.label == 0],
        1: [e for e in task.train if e.label == 1],
    }
    demos = rng.sample(by_label[0], 2) + rng.sample(by_label[1], 2)
    rng.shuffle(demos)
    return "".join(
        f"Review: {d.fields['text']}\nSentiment: {DEMO_WORDS[d.label]}\n\n" for d in demos
    )


def fill(template: str, text: str) -> str:
    return template.replace("{text}", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="SST-2 test sentences")
    parser.add_argument(
        "--plain-examples",
        type=int,
        default=None,
        help="sentences for the plain loop (default all)",
    )
    parser.add_argument("--candidates", type=int, default=20, help="input-first prompts")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rng = random.Random(0)
    task = load_task("sst-2")
    sentences = [e.fields["text"] for e in task.test[: args.examples]]
    n_plain = min(args.plain_examples or len(sentences), len(sentences))
    peak = start_peak = matmul_peak()
    model = load_model("smollm2-135m-instruct")
    hf_model, tokenizer = model.hf_model, model.tokenizer
    print(
        f"SmolLM2-135M-Instruct fp32, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads; matmul peak {peak:.0f} GFLOP/s; batch_size {model.batch_size}",
        flush=True,
    )
    model.score_labels(["warm-up"], ["a", "b"])  # first-call costs out of the timings
    plain_loop(hf_model, tokenizer, ["warm-up"], ["a"])

    rows: list[dict] = []

    def report(name: str, calls, plain_calls=None, engine_baseline=None) -> dict:
        engine = engine_arm(model, calls)
        n_texts = sum(len(t) for t, _ in calls)
        row = {
            "scenario": name,
            "texts": n_texts,
            "engine_examples_per_s": n_texts / engine["seconds"],
            "engine_seconds": engine["seconds"],
            "engine_gflops": engine["flops"] / engine["seconds"] / 1e9,
            "engine_peak_fraction": engine["flops"] / engine["seconds"] / 1e9 / peak,
            "tokens_forwarded": engine["tokens_forwarded"],
            "tokens_computed": engine["tokens_computed"],
        }
        if plain_calls is not None:  # the plain loop, on the first n_plain sentences
            plain, seconds = timed(
                lambda: [plain_loop(hf_model, tokenizer, t, w) for t, w in plain_calls]
            )
            n = sum(len(t) for t, _ in plain_calls)
            row["baseline"] = "plain transformers loop"
            row["baseline_texts"] = n
            row["baseline_examples_per_s"] = n / seconds
            diffs = [
                np.abs(p - e[: len(p)]).max()
                for p, e in zip(plain, engine["scores"], strict=True)
                if len(p)
            ]
            row["max_abs_diff"] = float(max(diffs))
        if engine_baseline is not None:  # the engine, one call per candidate
            base = engine_arm(model, engine_baseline)
            row["baseline"] = "engine, one call per candidate"
            row["baseline_texts"] = sum(len(t) for t, _ in engine_baseline)
            row["baseline_examples_per_s"] = row["baseline_texts"] / base["seconds"]
            row["baseline_gflops"] = base["flops"] / base["seconds"] / 1e9
            together = np.concatenate(engine["scores"])
            alone = np.concatenate(base["scores"])
            row["max_abs_diff"] = float(np.abs(together - alone).max())
        row["speedup"] = row["engine_examples_per_s"] / row["baseline_examples_per_s"]
        row["peak_rss_mb"] = peak_rss_mb()
        rows.append(row)
        print(
            f"  {name}: engine {row['engine_examples_per_s']:.1f} ex/s, "
            f"baseline {row['baseline_examples_per_s']:.1f} ex/s ({row['speedup']:.2f}x)",
            flush=True,
        )
        return row

    # 1. zero-shot prompts
    calls = [([fill(t, s) for s in sentences], w) for t, w in ZERO_SHOT]
    report("zero-shot", calls, [(texts[:n_plain], w) for texts, w in calls])

    # 2. four demonstrations before the query (a long shared prefix)
    prefix = demo_prefix(task, rng)
    texts = [prefix + fill(DEMO_TEMPLATE, s) for s in sentences]
    shared = len(model.tokenize(prefix + "Review:"))
    report("4 demos", [(texts, DEMO_WORDS)], [(texts[:n_plain], DEMO_WORDS)])
    rows[-1]["shared_prefix_tokens"] = shared

    # 3. input-first candidates: all at once vs one call per candidate
    templates = [
        "{text} " + " ".join(rng.sample(TRIGGER_WORDS, 4)) + " It was"
        for _ in range(args.candidates)
    ]
    words = ["terrible", "great"]
    together = [([fill(t, s) for t in templates for s in sentences], words)]
    alone = [([fill(t, s) for s in sentences], words) for t in templates]
    report(f"{args.candidates} input-first", together, engine_baseline=alone)

    end_peak = matmul_peak()
    peak = max(peak, end_peak)  # the fractions against the better of the two measurements
    for r in rows:
        r["engine_peak_fraction"] = r["engine_gflops"] / peak
    header = (
        f"{'scenario':<16}{'texts':>7}{'plain/base ex/s':>17}{'engine ex/s':>13}{'ratio':>7}"
        f"{'GFLOP/s':>9}{'% peak':>8}{'RSS MB':>8}{'max |diff|':>12}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['scenario']:<16}{r['texts']:>7}{r['baseline_examples_per_s']:>17.1f}"
            f"{r['engine_examples_per_s']:>13.1f}{r['speedup']:>6.2f}x{r['engine_gflops']:>9.1f}"
            f"{100 * r['engine_peak_fraction']:>7.0f}%{r['peak_rss_mb']:>8.0f}"
            f"{r['max_abs_diff']:>12.1e}"
        )
    load = os.getloadavg()
    print(
        f"matmul peak {peak:.0f} GFLOP/s (fp32 2048x2048 torch.mm, best of 12 at the start and "
        f"at the end: {start_peak:.0f}, {end_peak:.0f}); load average {load[0]:.2f} (1 min), "
        f"{load[1]:.2f} (5 min) on {os.cpu_count()} CPUs.\nBaseline of the last row: the engine "
        "scoring one candidate per call."
    )
    zero, demos, first = rows
    targets = {
        "zero-shot speedup >= 3": zero["speedup"] >= 3,
        "4-demo speedup >= 6": demos["speedup"] >= 6,
        "zero-shot >= 60% of matmul peak": zero["engine_peak_fraction"] >= 0.6,
        "input-first together >= 3x one call per candidate": first["speedup"] >= 3,
        "class log-probabilities agree within 1e-4": all(r["max_abs_diff"] <= 1e-4 for r in rows),
        "peak resident memory < 2 GB": max(r["peak_rss_mb"] for r in rows) < 2048,
    }
    for name, ok in targets.items():
        print(f"  [{'met' if ok else 'NOT met'}] {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "model": "smollm2-135m-instruct",
        "dtype": "float32",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_start_end": [start_peak, end_peak],
        "load_average_1_5_15": list(load),
        "batch_size": model.batch_size,
        "examples": len(sentences),
        "plain_examples": n_plain,
        "scenarios": rows,
        "targets": targets,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
