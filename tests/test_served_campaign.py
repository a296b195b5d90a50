"""Campaigns on a served model (llama-cpp-python's server on the embedded GGUF): a black-box
searcher runs to its budget, a campaign killed mid-batch resumes to the same leaderboard without
sending a request whose answer is stored, and a bad start is one error line that leaves no store.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from campaign_fixtures import dying_factory, run_campaign
from served_fixtures import free_port

from promptscout.cli import main
from promptscout.config import load_config
from promptscout.leaderboard import build_leaderboard
from promptscout.store import Store

pytestmark = pytest.mark.integration


def served_campaign(tmp_path: Path, server_url: str, task_dir: Path, name: str, searchers: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(
        textwrap.dedent(f"""\
        [campaign]
        name = "{name}"
        store = "{tmp_path / name}.db"

        [model]
        name = "openai:smollm2"
        base_url = "{server_url}"
        concurrency = 4

        [task]
        path = "{task_dir}"
        label_words = ["bad", "good"]

        [objective]
        name = ["cross_entropy", "accuracy"]

        [budget]
        examples = 48

        [leaderboard]
        top_k = 2

        [selection]
        validation = false
        """)
        + textwrap.dedent(searchers),
        encoding="utf-8",
    )
    return path


BAYESIAN = """
[[searchers]]
type = "bayesian"
batch_size = 3
templates = ["Review: {text}\\nSentiment:", "{text} It was"]
label_word_candidates = [["bad", "terrible"], ["good", "great"]]
"""


def completions_sent(log: Path) -> int:
    return log.read_text(errors="replace").count("POST /v1/completions")


def test_a_killed_served_campaign_resumes_without_sending_an_answered_request(
    llama_server, tiny_task_dir, tmp_path
):
    straight = load_config(
        served_campaign(tmp_path, llama_server.base_url, tiny_task_dir, "straight", BAYESIAN)
    )
    before = completions_sent(llama_server.log)
    board = run_campaign(straight)
    straight_requests = completions_sent(llama_server.log) - before
    with Store(straight.store_path, readonly=True) as store:
        assert store.examples_scored("dev") == 48
        assert {e.kind for e in build_leaderboard(store)} == {"prompt", "ensemble"}

    killed = load_config(
        served_campaign(tmp_path, llama_server.base_url, tiny_task_dir, "killed", BAYESIAN)
    )
    before = completions_sent(llama_server.log)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(killed, evaluator_factory=dying_factory(3))
    assert run_campaign(killed) == board
    resumed_requests = completions_sent(llama_server.log) - before
    # Each start probes the server (a request or two), and the chunk in flight at the kill was
    # never stored; everything else was answered once.
    assert straight_requests <= resumed_requests <= straight_requests + 4 + 16
    with Store(killed.store_path, readonly=True) as store:
        statuses = [row[0] for row in store._db.execute("SELECT status FROM runs ORDER BY id")]
    assert statuses == ["interrupted", "finished"]


def error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_server_that_is_down_is_one_line_and_leaves_no_store(capsys, tiny_task_dir, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    path = served_campaign(tmp_path, url, tiny_task_dir, "down", BAYESIAN)
    line = error_line(capsys, ["run", str(path)])
    assert f"cannot reach {url}: connection refused" in line
    assert not any(f.exists() for f in Store.files(tmp_path / "down.db"))


def test_a_white_box_searcher_is_refused_and_leaves_no_store(
    capsys, llama_server, tiny_task_dir, tmp_path
):
    autoprompt = '\n[[searchers]]\ntype = "autoprompt"\ntemplate = "{text} [T][T] It was"\n'
    path = served_campaign(tmp_path, llama_server.base_url, tiny_task_dir, "wb", autoprompt)
    line = error_line(capsys, ["run", str(path)])
    assert "[[searchers]] autoprompt: needs the model's internals" in line
    assert not any(f.exists() for f in Store.files(tmp_path / "wb.db"))


WRITERS = """
[[searchers]]
type = "opro"
batch_size = 2
templates = ["Review: {text}\\nSentiment:"]
instructions = ["", "Judge the review."]
rounds = 1
writes_per_round = 2
samples_per_write = 2
max_new_tokens = 24

[[searchers]]
type = "reflect"
batch_size = 2
templates = ["Review: {text}\\nSentiment:"]
instructions = ["Say if the review is good or bad."]
rounds = 1
writes_per_round = 2
minibatch = 4
merge_every = 0
max_new_tokens = 24
"""


def test_a_served_model_writes_for_the_writers(llama_server, tiny_task_dir, tmp_path):
    """The served model is scorer and proposer: opro's seeded samples and reflect's scoring of
    its parent's training minibatch go through the server, and each writer's usage counts them
    apart from the search budget."""
    path = served_campaign(tmp_path, llama_server.base_url, tiny_task_dir, "writers", WRITERS)
    config = load_config(path)
    config.budget.examples = 400
    run_campaign(config)
    with Store(config.store_path, readonly=True) as store:
        opro, reflect = (
            store.meta.searcher_report(n)["notes"]["writing"] for n in ("opro", "reflect")
        )
        written = [p for p, s in store.prompts().values() if s == "opro" and p.instruction]
    assert opro["calls"] == 2 and opro["writes"] == 4 and opro["tokens"] > 0
    assert opro["proposals"] == 4 == opro["kept"] + sum(opro["dropped"].values())
    assert opro["kept"] == sum(1 for p in written if p.metadata["operator"] == "opro")
    assert reflect["feedback_examples"] == 8  # two children, four training examples each
