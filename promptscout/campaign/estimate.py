"""What a campaign will cost before it runs (``promptscout run CAMPAIGN.toml --estimate``).

The projection counts the examples the model will read: the search budget (scored search-split
examples; with a minutes budget only, what the measured speed buys in that time), the
selection's validation (the pool on the training examples), and the finalists' held-out
re-scoring (``top_k`` on the held-out examples, or as many as ``rescore_minutes`` buy at the
probe's speed); readout references and white-box searchers' internal reads come on top. For
a served model, every example is one request (an echo-scored one is one request per label
word) and the tokens come from the probe texts; for an in-process model, a short timing probe
on search-split examples gives examples per second. Nothing is stored.
"""

from __future__ import annotations

import time
from typing import Any

from promptscout.builders import campaign_task, load_campaign_model
from promptscout.campaign.rescore import sample_size
from promptscout.config import CampaignConfig
from promptscout.prompts import Prompt

PROBE_EXAMPLES = 16


def estimate(config: CampaignConfig) -> dict[str, Any]:
    """Projected examples, requests, tokens, dollars and minutes of a campaign."""
    task = campaign_task(config)
    model = load_campaign_model(config)
    search = task.split(config.task.search_split)
    probe = Prompt(_probe_template(config, task.input_fields), task.label_words)
    texts = [probe.render(e) for e in search[:PROBE_EXAMPLES]]
    started = time.perf_counter()
    model.score_labels(texts, task.label_words)
    per_second = len(texts) / max(time.perf_counter() - started, 1e-9)
    budget = config.budget
    searched = budget.examples
    if searched is None and budget.minutes is not None:
        searched = int(budget.minutes * 60 * per_second)
    try:
        holdout = len(task.split(config.task.holdout_split))
    except Exception:  # no held-out split
        holdout = 0
    if config.task.holdout_limit:
        holdout = min(holdout, config.task.holdout_limit)
    finalists = config.leaderboard.top_k
    if config.leaderboard.rescore_minutes is not None and finalists:
        # every finalist at the probe's speed (a slower one buys fewer)
        bought = sample_size(finalists / per_second, config.leaderboard.rescore_minutes)
        holdout = min(holdout, bought)
    validation = config.selection.pool * len(task.train) if config.selection.validation else 0
    examples = (searched or 0) + validation + finalists * holdout
    result: dict[str, Any] = {
        "search_examples": searched,
        "validation_examples": validation,
        "holdout_examples": finalists * holdout,
        "examples": examples,
        "examples_per_second": round(per_second, 1),
        "minutes": round(examples / per_second / 60, 1),
    }
    if config.model.served:
        words = len(task.label_words) if config.model.scoring == "echo" else 1
        read = sum(model.count_tokens(t) for t in texts) / max(len(texts), 1)
        # one token per scoring request; generate writes up to its answer length
        written = model.options.max_new_tokens if config.model.scoring == "generate" else 1
        result["requests"] = examples * words
        result["prompt_tokens"] = int(examples * words * read)
        result["completion_tokens"] = examples * words * written
        prices = config.model.price_per_1k_input, config.model.price_per_1k_output
        if any(prices):
            cost = result["prompt_tokens"] * prices[0] + result["completion_tokens"] * prices[1]
            result["dollars"] = round(cost / 1000, 4)
    return result


def _probe_template(config: CampaignConfig, fields: tuple[str, ...]) -> str:
    """The first hand-written template of the campaign's searchers, else a generic one."""
    for spec in config.searchers:
        for key in ("templates", "template"):
            value = spec.options.get(key)
            template = value[0] if isinstance(value, list) and value else value
            if isinstance(template, str) and "{" in template:
                return template
    return "\n".join(f"{{{name}}}" for name in fields) + "\nAnswer:"
