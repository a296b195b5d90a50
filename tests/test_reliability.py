"""Reliability: kill -9 at random moments then resume, one writer per store, bad input refused
with one line and a non-zero exit, nothing stored ever lost."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from campaign_fixtures import campaign_text

from promptscout.cli import main

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def stored_evaluations(store: Path) -> dict[int, str]:
    """Every committed evaluation record by row id (read-only, safe while a writer runs)."""
    if not store.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return dict(db.execute("SELECT id, record FROM evaluations"))
        finally:
            db.close()
    except sqlite3.OperationalError:  # the writer is still creating the schema
        return {}


def start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "promptscout", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )


def wait_for_evaluations(proc: subprocess.Popen, store: Path, count: int) -> bool:
    """Wait until ``store`` holds ``count`` evaluations; False if the process ended first."""
    deadline = time.time() + 180
    while time.time() < deadline:
        if len(stored_evaluations(store)) >= count:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError(f"no {count} evaluations in {store} after 180 s")


def leaderboard(capsys, store: Path) -> list[tuple]:
    code, out, err = cli(capsys, "leaderboard", str(store), "--json")
    assert code == 0, err
    return [
        (e["rank"], e["searcher"], json.dumps(e["prompt"], sort_keys=True), e["dev"], e["test"])
        for e in json.loads(out)["entries"]
    ]


# A writer beside the tiny campaign's searchers: the tiny model writes (seeded sampling), so a
# resumed process must write again exactly what the killed one wrote and did not save.
WRITER = """
[[searchers]]
type = "ape"
instructions = ["", "Classify the review."]
rounds = 3
writes_per_round = 2
samples_per_write = 2
max_new_tokens = 12
"""


@pytest.mark.parametrize("extra", ["", WRITER], ids=["composers", "with-a-writer"])
def test_kill_9_at_random_moments_then_resume_equals_a_straight_run(
    capsys, write_campaign, tmp_path, extra
):
    path = write_campaign(budget=320, extra=extra)
    straight = tmp_path / "straight.db"
    # A process of its own, as the killed and resumed runs have (the test process's torch may
    # run other threads: a writer's sampling can turn on the last bits of a logit).
    done = subprocess.run(
        [sys.executable, "-m", "promptscout", "run", str(path), "--store", str(straight)],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    total = len(stored_evaluations(straight))
    assert total > 10

    store = tmp_path / "tiny.db"
    kills = sorted(random.Random(7).sample(range(2, total - 2), 3))
    committed: dict[int, str] = {}
    for i, at in enumerate(kills):
        proc = start("run", str(path)) if i == 0 else start("resume", str(store))
        if wait_for_evaluations(proc, store, at):
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = stored_evaluations(store)
        # Nothing committed before a kill is lost or changed by the next process.
        assert all(now[k] == v for k, v in committed.items())
        committed = now
    proc = subprocess.run(
        [sys.executable, "-m", "promptscout", "resume", str(store)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    final = stored_evaluations(store)
    assert all(final[k] == v for k, v in committed.items())
    assert leaderboard(capsys, store) == leaderboard(capsys, straight)
    if extra:  # the writer's calls, tokens and drops too (its seconds are wall time)
        assert writer_usage(store) == writer_usage(straight)
        assert writer_usage(store)["writes"] > 0


def writer_usage(store: Path) -> dict:
    """The ape writer's saved usage and guardrail counts, less its wall-clock seconds."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        (state,) = db.execute("SELECT state FROM searcher_states WHERE searcher = 'ape'").fetchone()
    finally:
        db.close()
    state = json.loads(state)
    usage = {k: v for k, v in state["writer"]["usage"].items() if k != "seconds"}
    return {**usage, **state["guard"]}


def test_a_second_process_on_a_store_is_refused_and_changes_nothing(
    capsys, write_campaign, tmp_path
):
    path = write_campaign(budget=400)
    store = tmp_path / "tiny.db"
    proc = start("run", str(path))
    try:
        assert wait_for_evaluations(proc, store, 2), "the campaign ended before the check"
        before = stored_evaluations(store)
        code, _, err = cli(capsys, "resume", str(store))
        assert code == 2 and "in use by another promptscout process" in error_line(err)
        after = stored_evaluations(store)
        assert all(after[k] == v for k, v in before.items())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('name = ["accuracy", "cross_entropy"]', 'name = ["accurasy"]'), "objective 'accurasy'"),
        (
            ('name = ["accuracy", "cross_entropy"]', 'name = ["no_such_module:metric"]'),
            "cannot import module 'no_such_module'",
        ),
        (('"{text} It was"', '"{sentence} It was"'), "field {sentence} is not an input field"),
        (('label_words = ["bad", "good"]', 'label_words = ["good", "good"]'), "distinct"),
        (("[campaign]", "[campaign]\nseeds = 3"), "seeds"),
        (('type = "manual"', 'type = "manul"'), "unknown searcher type 'manul'"),
    ],
)
def test_bad_campaign_files_fail_with_one_line(capsys, write_campaign, change, expected):
    path = write_campaign()
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(*change, 1))
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2 and expected in error_line(err)


def test_unknown_model_folder_fails_with_one_line(capsys, write_campaign, tiny_causal_dir):
    path = write_campaign()
    path.write_text(path.read_text().replace(str(tiny_causal_dir), str(tiny_causal_dir) + "-gone"))
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2 and "no such folder" in error_line(err)


def test_label_words_without_tokens_stop_the_campaign_at_the_start(
    capsys, tmp_path, tiny_masked_dir, tiny_task_dir
):
    store = tmp_path / "tiny.db"
    path = tmp_path / "campaign.toml"
    # A zero-width space is a non-empty word, but the WordPiece tokenizer reads nothing of it.
    text = campaign_text(tiny_masked_dir, tiny_task_dir, store)
    path.write_text(text.replace('["bad", "good"]', '["bad", "\\u200b"]', 1))
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2 and "[task] label_words" in error_line(err) and "no tokens" in err
    assert stored_evaluations(store) == {}


def test_a_store_from_a_newer_promptscout_is_refused_untouched(capsys, write_campaign, tmp_path):
    path = write_campaign(budget=16)
    store = tmp_path / "tiny.db"
    assert cli(capsys, "run", str(path))[0] == 0
    db = sqlite3.connect(store)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    before = stored_evaluations(store)
    for argv in (("resume", str(store)), ("leaderboard", str(store))):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "schema version 99" in error_line(err)
    assert stored_evaluations(store) == before
