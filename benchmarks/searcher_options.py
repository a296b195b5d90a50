"""What benchmarks/searchers.py compares: per-task prompt parts, each searcher's options, sizes.

Every searcher gets options in the spirit of its example campaign in examples/, adapted per task
(the sentiment sets share parts; SST-5 and AG News get their own words and cues). The ``small``
size shrinks the white-box searchers' internal work (iterations, steps, epochs) so that one of
their campaigns takes about a minute on 2 CPU cores; ``full`` uses the example campaigns' values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TASKS = ("sst-2", "mr", "sst-5", "agnews")
SEARCHERS = ("manual", "random", "autoprompt", "rl", "evolutionary", "bayesian", "soft")
WRITERS = ("ape", "opro", "reflect")
# What fits the small configuration's 30 minutes (see benchmarks/searchers.py): the hand-written
# pool (cheap) and the two strongest black-box searchers of a measured one-seed pilot.
SMALL = ("manual", "evolutionary", "bayesian")


@dataclass(frozen=True)
class TaskParts:
    """Hand-written material for one task.

    Attributes:
        templates: The hand-written zero-shot pool (the baseline picks one of them by dev).
        instruction: A task instruction (instruction pools, soft-prompt initialisation).
        field_labels: Labels put before the input by composing searchers.
        cues: Answer cues for composing searchers.
        words: Candidate label words per class (the first of each is the task's default).
        alt_words: A second hand-written label-word list for the manual searcher.
    """

    templates: tuple[str, ...]
    instruction: str
    field_labels: tuple[str, ...]
    cues: tuple[str, ...]
    words: tuple[tuple[str, ...], ...]
    alt_words: tuple[str, ...]


_SENTIMENT = TaskParts(
    templates=(
        "Review: {text}\nSentiment:",
        "{text} It was",
        "Text: {text}\nIs the sentiment of this text positive or negative? Answer:",
    ),
    instruction="Classify the sentiment of the movie review as positive or negative.",
    field_labels=("", "Review", "Movie review"),
    cues=("Sentiment:", "It was", "Overall, it was", "The movie is"),
    words=(("negative", "bad", "terrible"), ("positive", "good", "great")),
    alt_words=("terrible", "great"),
)
PARTS = {
    "sst-2": _SENTIMENT,
    "mr": _SENTIMENT,
    "sst-5": TaskParts(
        templates=(
            "Review: {text}\nSentiment:",
            "{text} It was",
            "Review: {text}\nWas the movie terrible, bad, okay, good or great? Answer:",
        ),
        instruction="Rate the movie review as terrible, bad, okay, good or great.",
        field_labels=("", "Review", "Movie review"),
        cues=("Sentiment:", "It was", "Overall, it was", "The movie is"),
        words=(
            ("terrible", "awful"),
            ("bad", "poor"),
            ("okay", "fine"),
            ("good", "nice"),
            ("great", "excellent"),
        ),
        alt_words=("awful", "bad", "fine", "good", "excellent"),
    ),
    "agnews": TaskParts(
        templates=(
            "Article: {text}\nTopic:",
            "{text} This news is about",
            "News: {text}\nIs this news about World, Sports, Business or Tech? Answer:",
        ),
        instruction="Classify the news article as World, Sports, Business or Tech.",
        field_labels=("", "Article", "News"),
        cues=("Topic:", "Category:", "This news is about", "Answer:"),
        words=(
            ("World", "Politics"),
            ("Sports", "Sport"),
            ("Business", "Finance"),
            ("Tech", "Technology", "Science"),
        ),
        alt_words=("Politics", "Sports", "Business", "Science"),
    ),
}


@dataclass(frozen=True)
class Size:
    """One benchmark configuration.

    Attributes:
        tasks: Bundled task names.
        seeds: Few-shot split seeds (``[task] split_seed``).
        searchers: Searchers compared (each alone in its campaign).
        dev_examples: Search budget per campaign, in scored dev examples (``[budget] examples``;
            the same for every searcher and task: 12 passes over SST-2's 32 dev examples, about
            5 over SST-5's 80).
        test_size: Examples of the fixed seeded test subset (0: the whole test split).
        top_k: Finalists re-scored on test and pooled by the ``average`` ensemble.
        campaign_minutes: ``[budget] minutes`` per campaign: a safety cap (the stop reason
            is in the CSV when it binds).
        max_minutes: The whole run stops starting new (seed, task) cells after this.
    """

    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    searchers: tuple[str, ...]
    dev_examples: int
    test_size: int
    top_k: int
    campaign_minutes: float
    max_minutes: float


SIZES = {
    "small": Size(TASKS, (13, 42, 87), SMALL, 384, 200, 2, 5.0, 28.0),
    "full": Size(TASKS, (13, 42, 87), SEARCHERS, 2000, 0, 3, 20.0, 10_000.0),
    # The writers (the embedded model writes) beside the Bayesian searcher, on the three tasks
    # whose labels are words the model knows: ~6 minutes per (task, seed) on 2 CPU cores.
    "writers": Size(
        ("sst-2", "mr", "agnews"), (13, 42, 87), ("bayesian", *WRITERS), 384, 200, 2, 6.0, 90.0
    ),  # fmt: skip
    # The smoke test's size (tests/test_bench_searchers.py), for the tiny random model.
    "tiny": Size(("sst-2",), (13, 42), ("random", "soft", "ape"), 64, 8, 2, 1.0, 5.0),
}


def searcher_options(name: str, task: str, size: str) -> dict[str, Any]:
    """The ``[[searchers]]`` table of ``name`` on ``task`` for configuration ``size``."""
    parts, small = PARTS[task], size != "full"
    composing = {
        "instructions": ["", parts.instruction],
        "field_labels": list(parts.field_labels),
        "cues": list(parts.cues),
        "separators": ["\n", " "],
        "label_word_candidates": [list(ws) for ws in parts.words],
        "max_demos": 2,
    }
    if name == "manual":
        default = [ws[0] for ws in parts.words]
        return {
            "batch_size": 2 if small else 8,
            "templates": list(parts.templates),
            "label_word_sets": [default, list(parts.alt_words)],
        }
    if name == "random":
        return {"batch_size": 2 if small else 8, **composing}
    if name == "evolutionary":
        return {
            "algorithm": "ga",
            "population_size": 4 if small else 8,
            "batch_size": 2 if small else 8,
            "demo_pool": 16,
            "init_demos": 0,
            "phrases": ["Answer with one word.", "Be accurate."],
            **composing,
        }
    if name == "bayesian":
        return {
            "batch_size": 2 if small else 8,
            "templates": list(parts.templates),
            "compose": True,
            "demo_pool": 16,
            "n_startup_trials": 4 if small else 10,
            **composing,
        }
    if name in WRITERS:
        writer = {
            "batch_size": 2 if small else 8,
            "templates": [parts.templates[0]],
            # The smoke test's budget (two dev passes) leaves room for one starting prompt.
            "instructions": [""] if size == "tiny" else ["", parts.instruction],
            "rounds": 3,
            "writes_per_round": 3 if small else 6,
            "samples_per_write": 2,
        }
        return {**writer, "minibatch": 8} if name == "reflect" else writer
    if name == "autoprompt":
        return {
            "batch_size": 1,
            "template": "{text} [T][T][T][T][T]",
            "initial_trigger": "the",
            "candidates": 8 if small else 16,
            "grad_batch": 8 if small else 16,
            "eval_examples": 8 if small else 16,
            "iterations": 6 if small else 100,
            "loss": "class",
        }
    if name == "rl":
        return {
            "template": "{text} [T][T][T][T][T]",
            "context": "Prompt:",
            "vocab_size": 3000,
            "batch_size": 4 if small else 8,
            "steps": 6 if small else 40,
            "train_examples": 8 if small else 16,
            "greedy_every": 10,
        }
    if name == "soft":
        return {
            "template": parts.templates[0],
            "vectors": 10 if small else 20,
            "init": "text",
            "init_text": parts.instruction,
            "learning_rate": 0.03,
            "train_batch": 8,
            "max_epochs": 3 if small else 20,
            "patience": 2 if small else 4,
        }
    raise ValueError(f"no benchmark options for searcher '{name}'")


def internal_train_reads(name: str, config: Any, state: dict[str, Any], n_train: int) -> int:
    """Train examples a white-box searcher read internally (not counted by the budget),
    reconstructed from its saved state and options: forward(+backward) passes per example.

    autoprompt: per step, the gradient batch plus the current and each candidate trigger set on
    the re-scoring batch (an upper bound: examples whose triggers do not render are dropped);
    rl: per step, each sampled prompt on the reward batch (its size is in the step's record);
    soft: one pass over train per epoch; writers: the training examples reflect scored for
    feedback. Black-box searchers read none.
    """
    if name in WRITERS:  # reflect scores parents on training minibatches for feedback
        return int(state["writer"]["usage"]["feedback_examples"])
    if name == "autoprompt":
        grad = config.grad_batch * config.accumulation_steps
        return sum(
            grad + (1 + int(r.get("candidates", 0))) * config.eval_examples
            for r in state.get("history", [])
        )
    if name == "rl":
        return sum(len(r["rewards"]) * r["examples"] for r in state.get("history", []))
    if name == "soft":
        return int(state.get("epoch", 0)) * n_train
    return 0
