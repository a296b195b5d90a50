from __future__ import annotations

import sqlite3

import pytest

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.prompts import Prompt
from promptscout.store import SCHEMA_VERSION, Store

PROMPT = Prompt("{text} It was", ("bad", "good"))


def evaluation(split="dev", ids=("dev-0", "dev-1"), acc=0.5) -> Evaluation:
    return Evaluation(
        PROMPT.key, split, ids, [[-1.0, -2.0], [-3.0, -0.5]], {"accuracy": acc}, 2, 20, 0.1
    )


def test_round_trip_and_lookup(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.add_evaluation(PROMPT, "manual", evaluation())
        store.add_evaluation(PROMPT, "manual", evaluation("test", ("test-0",), 1.0))
        store.save_searcher_state("manual", {"next": 3})
        store.set_meta("note", {"a": [1, 2]})
    with Store(tmp_path / "s.db", readonly=True) as store:
        assert store.find_evaluation(PROMPT.key, "dev", ["dev-0", "dev-1"]) == evaluation()
        assert store.find_evaluation(PROMPT.key, "dev", ["dev-0"]) is None
        assert store.prompts()[PROMPT.key] == (PROMPT, "manual")
        assert store.prompt(PROMPT.key) == (PROMPT, "manual")
        assert store.prompt("not-a-key") is None
        assert store.examples_scored("dev") == 2 and store.count_evaluations() == 2
        assert store.searcher_state("manual") == {"next": 3}
        assert store.get_meta("note") == {"a": [1, 2]}


def test_scoring_time_sums_the_timed_evaluations_of_a_split(tmp_path):
    other = Prompt("Review: {text}", ("bad", "good"))
    cached = Evaluation(other.key, "dev", ("dev-0",), [[-1.0, -2.0]], {"accuracy": 1.0})
    with Store(tmp_path / "s.db") as store:
        store.add_evaluation(PROMPT, "manual", evaluation())  # 2 examples in 0.1 s
        store.add_evaluation(PROMPT, "manual", evaluation(ids=("dev-2", "dev-3")))
        store.add_evaluation(PROMPT, "manual", evaluation("test", ("test-0",)))
        store.add_evaluation(other, "manual", cached)  # from the score cache: no time, no examples
        timed = store.scoring_time_by_prompt("dev")
    assert list(timed) == [PROMPT.key]
    assert timed[PROMPT.key][0] == pytest.approx(0.2) and timed[PROMPT.key][1] == 4


def test_a_second_writer_is_refused(tmp_path):
    with Store(tmp_path / "s.db"):
        with pytest.raises(PromptscoutError, match="in use by another promptscout process"):
            Store(tmp_path / "s.db")
        with Store(tmp_path / "s.db", readonly=True) as reader:  # readers are never blocked
            assert reader.count_evaluations() == 0
    Store(tmp_path / "s.db").close()  # the lock is released on close


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "s.db").close()
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(PromptscoutError, match="newer than this promptscout"):
        Store(tmp_path / "s.db", readonly=True)


def test_not_a_store(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(PromptscoutError, match="not a promptscout store"):
        Store(tmp_path / "junk.db")
    with pytest.raises(PromptscoutError, match="does not exist"):
        Store(tmp_path / "missing.db", readonly=True)


def test_run_time_accounting(tmp_path):
    with Store(tmp_path / "s.db") as store:
        run = store.start_run()
        store.finish_run(run, "finished")
        store.start_run()  # killed: never finished, no evaluation
        assert 0 <= store.seconds_spent() < 5


def test_a_run_left_running_by_a_killed_process_is_marked_killed(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.start_run()  # killed: never finished
    with Store(path) as store:
        run = store.start_run()
        store.finish_run(run, "finished")
    rows = sqlite3.connect(path).execute("SELECT status, finished FROM runs ORDER BY id").fetchall()
    assert [status for status, _ in rows] == ["killed", "finished"] and rows[0][1] is None
