"""The report's figures, drawn with matplotlib's Agg backend (no display needed).

Each function takes plain data and writes one PNG, so the figures can be drawn and checked
without a store. :mod:`promptscout.report` gathers the data from a campaign store. A figure of a
metric takes its value axis as an :class:`Axis`: the label naming the metric and its split, and
where the axis starts and ends (bars start at the axis's origin, never at a cropped minimum).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # before pyplot: render to files, never open a window

import matplotlib.pyplot as plt  # noqa: E402

WIDTH, HEIGHT, DPI = 8.0, 4.5, 100


@dataclass(frozen=True)
class Axis:
    """A value axis: its label (the metric and its split, and where the axis starts), and its
    limits (None: matplotlib chooses). Bars start at ``low`` when it is set, else at 0."""

    label: str
    low: float | None = None
    high: float | None = None

    def apply(self, ax: plt.Axes, which: str = "y") -> None:
        (ax.set_ylabel if which == "y" else ax.set_xlabel)(self.label)
        if self.low is not None or self.high is not None:
            (ax.set_ylim if which == "y" else ax.set_xlim)(self.low, self.high)


@dataclass(frozen=True)
class Bar:
    """One leaderboard bar: a label, a value, its interval (or None), and whether it is an
    ensemble (drawn in another colour)."""

    label: str
    value: float
    interval: tuple[float, float] | None
    ensemble: bool


@dataclass(frozen=True)
class Point:
    """One candidate in the score-vs-length plot."""

    tokens: int
    value: float
    searcher: str


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_progress(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    axis: Axis,
    path: Path,
    end: int | None = None,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Best score so far of each searcher against the campaign's scored examples (steps, drawn
    on to ``end``, the examples scored in all); ``colors`` maps searchers to colours."""
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    for searcher, curve in curves.items():
        if curve:
            xs, ys = zip(*curve, strict=True)
            if end is not None and end > xs[-1]:
                xs, ys = (*xs, end), (*ys, ys[-1])
            color = (colors or {}).get(searcher)
            ax.step(xs, ys, where="post", marker="o", markersize=3, label=searcher, color=color)
    ax.set_xlabel("examples scored on the search split (whole campaign)")
    axis.apply(ax)
    ax.set_title("Best candidate so far, per searcher")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend()
    return _save(fig, path)


def plot_leaderboard(bars: Sequence[Bar], axis: Axis, path: Path) -> Path:
    """Horizontal bars (best on top) from the axis's origin, with 95% interval whiskers;
    ``axis`` is the value (x) axis."""
    height = max(HEIGHT, 0.4 * len(bars) + 1.5)
    fig, ax = plt.subplots(figsize=(WIDTH, height))
    ys = list(range(len(bars)))[::-1]
    colors = ["tab:orange" if b.ensemble else "tab:blue" for b in bars]
    origin = axis.low if axis.low is not None else 0.0
    ax.barh(ys, [b.value - origin for b in bars], left=origin, color=colors)
    for y, bar in zip(ys, bars, strict=True):
        if bar.interval is not None:
            low, high = bar.interval
            ax.errorbar(
                bar.value, y, xerr=[[bar.value - low], [high - bar.value]], color="black", capsize=3
            )
    ax.set_yticks(ys, [b.label for b in bars], fontsize=8)
    axis.apply(ax, "x")
    ax.set_title("Held-out scores (95% intervals; orange: ensembles)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def pareto_front(points: Sequence[Point], maximize: bool = True) -> list[Point]:
    """Points no other point beats on both length (fewer tokens) and value (higher, or lower
    when not ``maximize``), shortest first."""
    sign = 1.0 if maximize else -1.0
    front: list[Point] = []
    for point in sorted(points, key=lambda p: (p.tokens, -sign * p.value)):
        if not front or sign * point.value > sign * front[-1].value:
            front.append(point)
    return front


def plot_pareto(
    points: Sequence[Point],
    axis: Axis,
    path: Path,
    maximize: bool = True,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Every fully scored candidate's dev value against its prompt length, with the front."""
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    for searcher in sorted({p.searcher for p in points}):
        mine = [p for p in points if p.searcher == searcher]
        xs, ys = [p.tokens for p in mine], [p.value for p in mine]
        color = (colors or {}).get(searcher)
        ax.scatter(xs, ys, s=14, alpha=0.7, label=searcher, color=color)
    front = pareto_front(points, maximize)
    if front:
        # The front as an attainment line: the best value reachable within each length.
        longest = max(p.tokens for p in points)
        ax.step(
            [p.tokens for p in front] + [longest],
            [p.value for p in front] + [front[-1].value],
            where="post",
            color="black",
            linewidth=1,
            marker="D",
            markevery=list(range(len(front))),
            markerfacecolor="none",
            label="Pareto front",
        )
        ax.legend()
    ax.set_xlabel("prompt length (tokens: instruction, template, demonstrations)")
    axis.apply(ax)
    ax.set_title("Score vs prompt length")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_curve(
    points: Sequence[tuple[float, float]], xlabel: str, ylabel: str, title: str, path: Path
) -> Path:
    """A searcher's training curve (e.g. an RL policy's reward per step)."""
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, linewidth=1, marker="." if len(points) < 60 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(
    matrix: np.ndarray, classes: Sequence[str], title: str, ylabel: str, path: Path
) -> Path:
    """A confusion matrix: ``matrix[gold, predicted]`` counts, gold classes as rows, predicted
    ones as columns (a last column beyond ``classes`` counts undecided predictions, shown only
    when there are any); each cell shows its count and its share of the row, shaded by it."""
    counts = np.asarray(matrix, dtype=np.int64)
    columns = list(classes)
    if counts.shape[1] > len(classes) and counts[:, len(classes) :].sum():
        columns.append("undecided (tie)")
    counts = counts[:, : len(columns)]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(3.6, 0.6 * len(columns) + 2.2)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    size = 11 if len(columns) <= 4 else 8 if len(columns) <= 8 else 6
    for (row, col), count in np.ndenumerate(counts):
        share = shares[row, col]
        ax.text(
            col,
            row,
            f"{count}\n{share:.0%}",
            ha="center",
            va="center",
            fontsize=size,
            color="white" if share > 0.55 else "black",
        )
    rotate = max(len(c) for c in columns) > 8 or len(columns) > 5
    ax.set_xticks(
        range(len(columns)),
        columns,
        rotation=30 if rotate else 0,
        ha="right" if rotate else "center",
    )
    ax.set_yticks(range(len(classes)), list(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the gold class's examples")
    return _save(fig, path)
