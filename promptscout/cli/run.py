"""``promptscout run`` (and ``--estimate``) and ``promptscout resume``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from promptscout.cli.output import EXIT_INTERRUPTED, note, print_json
from promptscout.errors import PromptscoutError


def cmd_run(args: argparse.Namespace) -> int:
    from promptscout.config import load_config
    from promptscout.store import Store

    config = load_config(args.campaign)
    if args.store:
        config.store = args.store
    if args.budget is not None:
        if args.budget < 1:
            raise PromptscoutError(
                f"--budget must be a positive number of examples, got {args.budget}"
            )
        config.budget.examples = args.budget
    if args.seed is not None:
        config.seed = args.seed
    if args.estimate:
        return _print_estimate(config, args.json)
    path = config.store_path
    if path.exists():
        with Store(path, readonly=True) as existing:
            if existing.meta.config is not None:
                raise PromptscoutError(
                    f"store {path} already holds campaign '{existing.meta.config['name']}'; "
                    f"continue it with `promptscout resume {path}` or pass a new --store"
                )
    created = not path.exists()
    return _run_campaign(config, Store(path), args.top, new_store=created)


def _print_estimate(config: Any, as_json: bool) -> int:
    """``run --estimate``: what the campaign would read, send and cost; nothing is scored."""
    from promptscout.campaign.estimate import estimate

    projected = estimate(config)
    if as_json:
        print_json(projected)
        return 0
    print(
        f"examples: {projected['examples']} ({projected['search_examples']} search, "
        f"{projected['validation_examples']} selection, {projected['holdout_examples']} "
        f"held-out); about {projected['minutes']} min at {projected['examples_per_second']} ex/s"
    )
    if "requests" in projected:
        print(
            f"requests: {projected['requests']}; tokens: {projected['prompt_tokens']} prompt, "
            f"{projected['completion_tokens']} completion"
            + (f"; ${projected['dollars']}" if "dollars" in projected else "")
        )
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from promptscout.config import CampaignConfig
    from promptscout.store import Store

    store = Store(args.store)
    data = store.meta.config
    if data is None:
        store.close()
        raise PromptscoutError(
            f"store {args.store} holds no campaign; start one with `promptscout run`"
        )
    config = CampaignConfig.from_dict(data)
    config.store = str(args.store)
    return _run_campaign(config, store, args.top)


def _run_campaign(config: Any, store: Any, top: int, new_store: bool = False) -> int:
    """Run (or resume) the campaign on ``store``. A ``new_store`` this run created is removed
    again when the campaign stops on an error before anything was scored (a server that is
    down, a searcher the model cannot serve): a failed start leaves nothing behind."""
    from promptscout.campaign import Campaign
    from promptscout.leaderboard import format_table

    campaign, discard = None, False
    try:
        campaign = Campaign(config, store)
        if config.model.served:
            campaign.model()  # reach the server and probe it before anything else is said
        n = len(campaign.search_ids)
        note(
            f"campaign '{config.name}': task {campaign.task.name} ({n} {campaign.search_split} "
            f"examples per candidate), {len(campaign.searchers)} searcher(s), store {store.path}"
        )
        started = time.time()
        result = campaign.run()
        spent = f", ${result.dollars:.4f}" if result.dollars is not None else ""
        note(
            f"stopped: {result.stop_reason}; {result.examples_scored} examples scored, "
            f"{result.evaluations} evaluations stored, {time.time() - started:.0f} s{spent}"
        )
        print(format_table(result.leaderboard[:top], config.objective.names))
        note(f"export: {config.export_path}")
        return 0
    except KeyboardInterrupt:
        note(
            f"interrupted; every finished evaluation is stored. Continue with: "
            f"promptscout resume {store.path}"
        )
        return EXIT_INTERRUPTED
    except PromptscoutError:
        discard = new_store and store.count_evaluations() == 0
        raise
    finally:
        if campaign is not None:
            campaign.close()
        store.close()
        if discard:
            for file in store.files(store.path):
                file.unlink(missing_ok=True)
