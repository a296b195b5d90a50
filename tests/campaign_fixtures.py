"""Fixtures for campaign, store and CLI tests: a tiny task folder and campaign files that use the
tiny random causal model from conftest. Imported into conftest.py."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from promptscout.builders import default_evaluator
from promptscout.campaign import Campaign
from promptscout.cli import main
from promptscout.config import CampaignConfig
from promptscout.leaderboard import build_leaderboard
from promptscout.store import Store

POSITIVE = [
    "the movie was great",
    "a good film",
    "a wonderful story",
    "i loved it",
    "the acting is good",
    "this film is great",
    "great and good",
    "a great movie",
]
NEGATIVE = [
    "the movie was terrible",
    "a bad film",
    "an awful story",
    "i hated it",
    "the plot is bad",
    "this film is terrible",
    "terrible and bad",
    "a bad movie",
]


def write_tiny_task(path: Path, test_copies: int = 1) -> Path:
    """A two-class task folder: train/dev with 8 examples, test with 16 per ``test_copies``
    (each copy's texts numbered) (tsv)."""
    path.mkdir(parents=True, exist_ok=True)
    rows = [(t, 1) for t in POSITIVE] + [(t, 0) for t in NEGATIVE]
    test = rows + [(f"{t} ({i})", label) for i in range(1, test_copies) for t, label in rows]
    splits = {"train": rows[::2], "dev": rows[1::2], "test": test}
    for split, split_rows in splits.items():
        lines = ["sentence\tlabel"] + [f"{t}\t{label}" for t, label in split_rows]
        (path / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_task(tmp_path_factory.mktemp("tiny_task"))


def campaign_text(
    model_dir: Path, task_dir: Path, store: Path, *, budget: int = 200, extra: str = ""
) -> str:
    """A campaign file on the tiny model and task: manual prompts plus random search."""
    return (
        textwrap.dedent(f"""\
        [campaign]
        name = "tiny"
        seed = 0
        store = "{store}"

        [model]
        name = "{model_dir}"

        [task]
        path = "{task_dir}"
        label_words = ["bad", "good"]

        [objective]
        name = ["accuracy", "cross_entropy"]

        [budget]
        examples = {budget}

        [leaderboard]
        top_k = 2

        [[searchers]]
        type = "manual"
        templates = ["Review: {{text}}\\nSentiment:", "{{text}} It was"]
        batch_size = 2

        [[searchers]]
        type = "random"
        batch_size = 3
        label_word_candidates = [["bad", "terrible", "negative"], ["good", "great", "positive"]]
        max_demos = 2
        """)
        + extra
    )


@pytest.fixture
def write_campaign(tmp_path: Path, tiny_causal_dir: Path, tiny_task_dir: Path):
    """``write_campaign(**kw) -> Path`` of a campaign file whose store is ``tmp_path/tiny.db``."""

    def write(name: str = "campaign.toml", **kwargs) -> Path:
        path = tmp_path / name
        path.write_text(
            campaign_text(tiny_causal_dir, tiny_task_dir, tmp_path / "tiny.db", **kwargs),
            encoding="utf-8",
        )
        return path

    return write


# Racing that stops candidates readily on the tiny task (so resume tests cross racing decisions).
RACING = "\n[racing]\nfirst = 2\nz = 0.0\n"


def saved_state(config: CampaignConfig, searcher: str) -> dict | None:
    """The searcher's state as its campaign's store holds it (read-only)."""
    with Store(config.store_path, readonly=True) as store:
        return store.searcher_state(searcher)


def run_campaign(config, campaign_class=Campaign, **kwargs) -> list[tuple]:
    """Run (or resume) a campaign in-process; its leaderboard as (key, dev, test) rows."""
    with Store(config.store_path) as store:
        campaign = campaign_class(config, store, progress=False, **kwargs)
        try:
            campaign.run()
        finally:
            campaign.close()
        return [(e.prompt.key, e.dev, e.test) for e in build_leaderboard(store)]


def dying_factory(die_at: int):
    """An evaluator factory whose evaluator raises KeyboardInterrupt at evaluation ``die_at``
    (mid-batch: ``die_at - 1`` evaluations are committed), as a kill would."""

    def factory(task, objectives, config, cache):
        evaluator = default_evaluator(task, objectives, config, cache)
        inner, count = evaluator.iter_evaluate, {"n": 0}

        def iter_evaluate(*args, **kwargs):
            for item in inner(*args, **kwargs):
                count["n"] += 1
                if count["n"] == die_at:
                    raise KeyboardInterrupt
                yield item

        evaluator.iter_evaluate = iter_evaluate
        return evaluator

    return factory


def outcomes(searcher, pairs) -> list:
    """The outcomes a campaign would tell ``searcher`` about ``(prompt, evaluation)`` pairs: each
    complete when it covers its whole split, stopped early when fewer examples, failed on an
    error (:meth:`promptscout.searchers.SearchContext.outcome`)."""
    return [searcher.context.outcome(prompt, evaluation) for prompt, evaluation in pairs]


def evaluates_as_ranked(export: Path, payload: dict, entry, capsys) -> list[str]:
    """``promptscout evaluate --prompt EXPORT --rank N`` on ``entry``'s exported row gives the
    test numbers the leaderboard holds for it; returns the command (to run it again)."""
    rank = 1 + [e["key"] for e in payload["entries"]].index(entry.prompt.key)
    argv = ["evaluate", "--prompt", str(export), "--rank", str(rank), "--json", "--quiet"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prompt"]["soft"] == entry.prompt.soft
    assert result["accuracy"] == pytest.approx(entry.test["accuracy"])
    assert result["cross_entropy"] == pytest.approx(entry.test["cross_entropy"], abs=1e-6)
    return argv
