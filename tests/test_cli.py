"""The command line, end to end on the tiny model: outputs, errors, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from campaign_fixtures import campaign_text, write_tiny_task

from promptscout.cli import main


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_run_leaderboard_export_evaluate_report(
    capsys, write_campaign, tmp_path, tiny_causal_dir, tiny_task_dir
):
    code, out, err = cli(capsys, "run", str(write_campaign(budget=96)))
    assert code == 0, err
    assert "rank" in out and "stopped: example budget spent" in err
    store = str(tmp_path / "tiny.db")

    code, out, _ = cli(capsys, "leaderboard", store, "--json")
    entries = json.loads(out)["entries"]
    # 12 candidates, plus the average and weighted ensembles of the top 2 (on by default)
    assert code == 0 and len(entries) == 12 + 2
    assert sum(e["kind"] == "ensemble" for e in entries) == 2
    assert [e["rank"] for e in entries] == list(range(1, 15))
    first = entries[0]
    assert first["kind"] == "prompt" and set(first["dev"]) == {"accuracy", "cross_entropy"}
    assert first["test"] is not None and entries[-1]["test"] is None

    code, out, _ = cli(capsys, "leaderboard", store, "--split", "test", "--json")
    by_test = json.loads(out)["entries"]  # the 2 finalists and the 2 ensembles of them
    assert len(by_test) == 2 + 2 and sum(e["kind"] == "ensemble" for e in by_test) == 2

    export = tmp_path / "best.json"
    assert cli(capsys, "export", store, "--top", "1", "-o", str(export))[0] == 0
    code, out, _ = cli(
        capsys,
        "evaluate",
        "--prompt",
        str(export),
        "--model",
        str(tiny_causal_dir),
        "--task",
        str(tiny_task_dir),
        "--json",
        "--quiet",
    )
    result = json.loads(out)
    assert code == 0 and result["examples"] == 16
    assert result["accuracy"] == pytest.approx(first["test"]["accuracy"], abs=1e-9)
    assert result["seconds"] > 0

    assert cli(capsys, "report", store, "-o", str(tmp_path / "r.html"))[0] == 0
    assert "Leaderboard" in (tmp_path / "r.html").read_text()


def test_evaluate_template_matches_direct_scoring(
    capsys, tiny_causal, tiny_causal_dir, tiny_task_dir
):
    code, out, _ = cli(
        capsys,
        "evaluate",
        "--task",
        str(tiny_task_dir),
        "--template",
        "Review: {text}\\nSentiment:",
        "--label-words",
        "bad,good",
        "--split",
        "dev",
        "--model",
        str(tiny_causal_dir),
        "--json",
        "--quiet",
    )
    result = json.loads(out)
    from promptscout.tasks import load_task

    dev = load_task(str(tiny_task_dir)).dev
    scores = tiny_causal.score_labels(
        [f"Review: {e.fields['text']}\nSentiment:" for e in dev], ["bad", "good"]
    )
    expected = sum(int(s.argmax()) == e.label for s, e in zip(scores, dev, strict=True)) / len(dev)
    assert code == 0 and result["accuracy"] == pytest.approx(expected)
    assert result["prompt"]["template"] == "Review: {text}\nSentiment:"


def test_plugins_lists_builtins(capsys):
    code, out, _ = cli(capsys, "plugins", "--json")
    data = json.loads(out)
    assert code == 0 and {"manual", "random"} <= set(data["searchers"])
    assert "accuracy" in data["objectives"] and "smollm2-135m-instruct" in data["models"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("[task]\npath", '[task]\nname = "sst-3"\n#'), "unknown task 'sst-3'"),
        (('type = "random"', 'type = "genetic"'), "unknown searcher type 'genetic'"),
        (("{text} It was", "It was"), "has no input field placeholder"),
        (('label_words = ["bad", "good"]', 'label_words = ["bad"]'), "label word"),
        (("examples =", "examples = ="), "invalid TOML"),
    ],
)
def test_bad_campaigns_fail_with_one_line(capsys, write_campaign, tmp_path, change, expected):
    path = write_campaign()
    path.write_text(path.read_text().replace(*change, 1))
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2
    assert expected in one_error_line(err)


def test_bad_data_files_fail_with_one_line(capsys, write_campaign, tmp_path, tiny_task_dir):
    broken = tmp_path / "broken_task"
    broken.mkdir()
    for name in ("train.tsv", "test.tsv"):
        (broken / name).write_bytes((tiny_task_dir / name).read_bytes())
    (broken / "dev.tsv").write_bytes(b"sentence\tlabel\n\xff\xfe bad bytes\t1\n")
    path = write_campaign()
    path.write_text(path.read_text().replace(str(tiny_task_dir), str(broken)))
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2 and "dev.tsv" in one_error_line(err) and "UTF-8" in err

    (broken / "dev.tsv").write_text("sentence\tlabel\n")
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2 and "dev.tsv" in one_error_line(err)


def test_unknown_bundled_task_in_evaluate(capsys):
    code, _, err = cli(capsys, "evaluate", "--task", "nope", "--template", "{text}")
    assert code == 2 and "unknown task 'nope'" in one_error_line(err)


def test_run_refuses_to_overwrite_a_store(capsys, write_campaign):
    path = write_campaign(budget=16)
    assert cli(capsys, "run", str(path))[0] == 0
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2 and "promptscout resume" in one_error_line(err)


def test_kill_then_resume_keeps_every_evaluation(write_campaign, tmp_path):
    path = write_campaign(budget=400)
    store = tmp_path / "tiny.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptscout", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.time() + 120
    seen = 0
    while time.time() < deadline and seen < 8:
        time.sleep(0.2)
        if store.exists():
            try:
                db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
                seen = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
                db.close()
            except sqlite3.OperationalError:
                pass
    assert proc.poll() is None, "the campaign finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(store)
    before = {row[0]: row[1] for row in db.execute("SELECT id, record FROM evaluations")}
    db.close()
    assert len(before) >= 8

    result = subprocess.run(
        [sys.executable, "-m", "promptscout", "resume", str(store)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(store)
    after = {row[0]: row[1] for row in db.execute("SELECT id, record FROM evaluations")}
    spent = db.execute("SELECT SUM(examples) FROM evaluations WHERE split='dev'").fetchone()[0]
    db.close()
    assert all(after[i] == before[i] for i in before)
    assert spent == 400
    assert Path(str(store).replace(".db", ".json")).exists()


def test_run_estimate_projects_the_examples_and_stores_nothing(capsys, write_campaign, tmp_path):
    path = write_campaign(budget=96)
    code, out, err = cli(capsys, "run", str(path), "--estimate", "--json")
    assert code == 0, err
    projected = json.loads(out)
    # 96 search examples; selection validates its pool of 8 on the 8 training examples; the
    # top 2 are re-scored on the 16 test examples.
    assert projected["search_examples"] == 96
    assert projected["validation_examples"] == 8 * 8
    assert projected["holdout_examples"] == 2 * 16
    assert projected["examples"] == 96 + 64 + 32
    assert projected["examples_per_second"] > 0 and "requests" not in projected
    assert not (tmp_path / "tiny.db").exists()


def test_run_estimate_counts_the_held_out_sample_rescore_minutes_buys(
    capsys, tmp_path, tiny_causal_dir
):
    task = write_tiny_task(tmp_path / "task", test_copies=20)  # 320 held-out examples
    text = campaign_text(tiny_causal_dir, task, tmp_path / "tiny.db", budget=96)
    path = tmp_path / "campaign.toml"
    path.write_text(text.replace("top_k = 2\n", "top_k = 2\nrescore_minutes = 0.0001\n"))
    code, out, err = cli(capsys, "run", str(path), "--estimate", "--json")
    assert code == 0, err
    assert json.loads(out)["holdout_examples"] == 2 * 100  # the sample's minimum, not 2 * 320
