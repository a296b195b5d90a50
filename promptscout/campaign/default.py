"""The default campaign: what runs when a campaign file has no ``[[searchers]]``.

A new user names a task and nothing else; the campaign then runs the mix the benchmark suite
measured as the best at this budget (``benchmarks/default_campaign.py``, results in the README):

- ``manual``: three generic hand-written templates over the task's input fields, each read out
  three ways (the label words' scores; batch-calibrated; a linear verbalizer fitted on train);
- ``bayesian``: Optuna TPE over composed templates (field labels, cues, separators), the
  instruction pool, label words (the task's own plus three per class that a probe on the
  training examples proposes from the model's vocabulary), up to two demonstrations, and the
  same three readouts.

The file's parser (:func:`promptscout.config.parse_config`) gives ten minutes of search unless
the file has a ``[budget]``, and re-scores the finalists on 2,000 held-out examples at most
(``holdout_limit``); ensembles are on as in every campaign (``average`` and ``weighted`` of the
top 4): about 15 minutes in all on 2 CPU cores with the embedded model.
"""

from __future__ import annotations

from promptscout.config import SearcherSpec
from promptscout.tasks import Task

READOUTS = ["", "batch", "linear"]


def default_searchers(task: Task, served: bool = False) -> list[SearcherSpec]:
    """The default mix for ``task`` (its hand-written templates use the task's input fields);
    on a ``served`` model, without what needs the model's internals (label-word search and the
    learned verbalizer)."""
    fields = task.input_fields
    body = "\n".join(f"{{{name}}}" for name in fields)
    labelled = "\n".join(f"{name.capitalize()}: {{{name}}}" for name in fields)
    templates = [f"{labelled}\nLabel:", f"{body}\nAnswer:", f"Input: {body}\nCategory:"]
    readouts = [r for r in READOUTS if r != "linear"] if served else READOUTS
    searchers = [SearcherSpec("manual", {"templates": templates, "readouts": readouts})]
    if task.kind == "classification":
        bayesian = {"label_word_search": 0 if served else 3, "max_demos": 2, "readouts": readouts}
        searchers.append(SearcherSpec("bayesian", bayesian))
    else:  # generation: no label words to search, no readouts
        searchers[0] = SearcherSpec("manual", {"templates": templates})
        searchers.append(SearcherSpec("bayesian", {"max_demos": 2}))
    return searchers


def describe(specs: list[SearcherSpec]) -> str:
    """One line saying what the default campaign chose."""
    parts = []
    for spec in specs:
        options = ", ".join(f"{k} = {v!r}" for k, v in spec.options.items() if k != "templates")
        templates = spec.options.get("templates")
        extra = f"{len(templates)} templates" if templates else ""
        parts.append(f"{spec.type} ({', '.join(x for x in (extra, options) if x)})")
    return "no [[searchers]] given: running the default mix: " + "; ".join(parts)
