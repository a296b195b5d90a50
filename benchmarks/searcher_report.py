"""The outputs of benchmarks/searchers.py: per-seed CSV, the aggregated table, the verdict."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from searcher_options import Size

ROW_FIELDS = [
    "task",
    "seed",
    "method",
    "kind",
    "test_accuracy",
    "ensemble_test_accuracy",
    "dev_cross_entropy",
    "dev_accuracy",
    "dev_examples_scored",
    "internal_train_reads",
    "candidates_ranked",
    "test_examples",
    "seconds",
    "stop_reason",
    "prompt",
    # Writers only: the proposer's own calls, and what the guardrails dropped.
    "writer_answers",
    "writer_tokens",
    "writer_seconds",
    "feedback_examples",
    "dropped_share",
]
WRITER_FIELDS = ("writer_answers", "writer_tokens", "writer_seconds", "dropped_share")
SUMMARY_FIELDS = [
    "task",
    "method",
    "kind",
    "seeds",
    "test_accuracy_mean",
    "test_accuracy_std",
    "ensemble_test_accuracy_mean",
    "ensemble_test_accuracy_std",
    "dev_examples_scored_mean",
    "internal_train_reads_mean",
    "seconds_mean",
    *(f"{name}_mean" for name in WRITER_FIELDS),
]


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the values present (std None below two)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    return statistics.mean(present), statistics.stdev(present) if len(present) > 1 else None


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, method), in first-seen order, aggregated over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["method"]), []).append(row)
    summary = []
    for (task, method), group in groups.items():
        acc, acc_std = mean_std([r["test_accuracy"] for r in group])
        ens, ens_std = mean_std([r.get("ensemble_test_accuracy") for r in group])
        summary.append(
            {
                "task": task,
                "method": method,
                "kind": group[0]["kind"],
                "seeds": len(group),
                "test_accuracy_mean": acc,
                "test_accuracy_std": acc_std,
                "ensemble_test_accuracy_mean": ens,
                "ensemble_test_accuracy_std": ens_std,
                "dev_examples_scored_mean": mean_std([r["dev_examples_scored"] for r in group])[0],
                "internal_train_reads_mean": mean_std(
                    [r.get("internal_train_reads") for r in group]
                )[0],
                "seconds_mean": mean_std([r["seconds"] for r in group])[0],
                **{f"{n}_mean": mean_std([r.get(n) for r in group])[0] for n in WRITER_FIELDS},
            }
        )
    return summary


def verdicts(summary: Sequence[dict[str, Any]]) -> list[str]:
    """Per task: does the best searcher (mean test accuracy of its selected prompt) beat both
    baselines? Then the acceptance line (at least 3 of the 4 tasks)."""
    lines, met, tasks = [], 0, list(dict.fromkeys(s["task"] for s in summary))
    for task in tasks:
        rows = [s for s in summary if s["task"] == task and s["test_accuracy_mean"] is not None]
        searchers = [s for s in rows if s["kind"] == "searcher"]
        baselines = [s for s in rows if s["kind"] == "baseline"]
        if not searchers or len(baselines) < 2:
            lines.append(f"- {task}: incomplete")
            continue
        best = max(searchers, key=lambda s: s["test_accuracy_mean"])
        beaten = all(best["test_accuracy_mean"] > b["test_accuracy_mean"] for b in baselines)
        met += beaten
        against = ", ".join(f"{b['method']} {b['test_accuracy_mean']:.4f}" for b in baselines)
        # The margin next to the best's spread over seeds: a win smaller than it is a weak one.
        margin = best["test_accuracy_mean"] - max(b["test_accuracy_mean"] for b in baselines)
        spread = best["test_accuracy_std"]
        lines.append(
            f"- {task}: best searcher {best['method']} {best['test_accuracy_mean']:.4f} vs "
            f"{against}: {'beats both' if beaten else 'does not beat both'} "
            f"(margin {100 * margin:+.1f} points; the best's std over seeds "
            f"{'-' if spread is None else f'{100 * spread:.1f}'})"
        )
    verdict = "MET" if met >= 3 else "NOT MET"
    lines.append(
        f"Acceptance (best searcher beats both baselines on >= 3 of 4 tasks): {met} of "
        f"{len(tasks)} tasks run: {verdict}"
    )
    return lines


def by_task(summary: Sequence[dict[str, Any]]) -> list[str]:
    """A compact table: one row per method, one column per task, "selected (ensemble)" test
    accuracy, mean ± std over seeds (the README's table)."""
    tasks = list(dict.fromkeys(s["task"] for s in summary))
    methods = list(dict.fromkeys(s["method"] for s in summary))
    cells = {(s["task"], s["method"]): s for s in summary}
    lines = [
        "| method | " + " | ".join(tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for method in methods:
        row = []
        for task in tasks:
            s = cells.get((task, method))
            if s is None:
                row.append("-")
                continue
            text = _acc(s["test_accuracy_mean"], s["test_accuracy_std"], 3)
            if s["ensemble_test_accuracy_mean"] is not None:
                text += f" ({s['ensemble_test_accuracy_mean']:.3f})"
            row.append(text)
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    return lines


def writer_table(summary: Sequence[dict[str, Any]]) -> list[str]:
    """The writers' own cost per task (means over seeds), where any writer ran."""
    rows = [s for s in summary if s.get("writer_answers_mean") is not None]
    if not rows:
        return []
    lines = [
        "",
        "The writers' own proposer calls (apart from the search budget), means over seeds:",
        "",
        "| task | writer | answers written | proposer tokens | proposer s | "
        "dropped by guardrails |",
        "|---|---|---|---|---|---|",
    ]
    for s in rows:
        dropped = s["dropped_share_mean"]
        lines.append(
            f"| {s['task']} | {s['method']} | {_num(s['writer_answers_mean'])} | "
            f"{_num(s['writer_tokens_mean'])} | {_num(s['writer_seconds_mean'], 1)} | "
            f"{'-' if dropped is None else f'{100 * dropped:.0f}%'} |"
        )
    return lines


def _acc(mean: float | None, std: float | None, digits: int = 4) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def markdown(
    summary: Sequence[dict[str, Any]],
    config: str,
    command: str,
    size: Size,
    notes: Sequence[str],
    seconds: float,
) -> str:
    """The aggregated table with its command, configuration, verdicts and notes."""
    test = f"a fixed subset of {size.test_size}" if size.test_size else "all"
    lines = [
        f"Command: `{command}`",
        "",
        f"Config `{config}`: tasks {', '.join(size.tasks)}; split seeds "
        f"{', '.join(map(str, size.seeds))}; searchers {', '.join(size.searchers)}; budget "
        f"{size.dev_examples} scored dev examples per campaign (dev = 16 x classes examples); "
        f"campaign seed = split seed; racing on; ranked by dev cross-entropy; top {size.top_k} "
        f"re-scored on {test} test examples "
        f"(seeded, the same for every row); ensemble = the leaderboard's `average` of the "
        f"finalists. Wall time {seconds / 60:.1f} min.",
        "",
        "| task | method | test acc (selected) | test acc (ensemble) | dev examples | "
        "internal train reads | wall s | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['task']} | {s['method']} | "
            f"{_acc(s['test_accuracy_mean'], s['test_accuracy_std'])} | "
            f"{_acc(s['ensemble_test_accuracy_mean'], s['ensemble_test_accuracy_std'])} | "
            f"{_num(s['dev_examples_scored_mean'])} | {_num(s['internal_train_reads_mean'])} | "
            f"{_num(s['seconds_mean'], 1)} | {s['seeds']} |"
        )
    lines += ["", "Test accuracy of the selected prompt (of the ensemble), by task:", ""]
    lines += [*by_task(summary), *writer_table(summary), "", *verdicts(summary)]
    lines += [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_outputs(
    rows: Sequence[dict[str, Any]],
    out: Path,
    config: str,
    command: str,
    size: Size,
    notes: Sequence[str],
    seconds: float,
) -> str:
    """Write ``searchers-<config>.csv``, ``-summary.csv`` and ``.md`` under ``out``; return the
    markdown."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    for path, fields, data in (
        (out / f"searchers-{config}.csv", ROW_FIELDS, rows),
        (out / f"searchers-{config}-summary.csv", SUMMARY_FIELDS, summary),
    ):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fields, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(data)
    table = markdown(summary, config, command, size, notes, seconds)
    (out / f"searchers-{config}.md").write_text(table, encoding="utf-8")
    return table
