"""MLflow tracking (``[tracking] mlflow``): one MLflow run per campaign with its params, metrics
and artifacts, continued by a resume (after an interrupt or a kill -9), and tracking problems
at the start refused with one error line before anything is scored.

The MLflow store is a sqlite database per test, copied from one made once per session (MLflow's
schema migrations take seconds)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from campaign_fixtures import RACING, dying_factory, run_campaign

# No usage reports from the tests (MLflow sends them unless told not to).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
pytest.importorskip("mlflow")

from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from promptscout.campaign.tracking import MlflowTracker  # noqa: E402
from promptscout.cli import main  # noqa: E402
from promptscout.config import load_config  # noqa: E402
from promptscout.store import Store  # noqa: E402

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def tracking(uri: str) -> str:
    return f'\n[tracking]\nmlflow = "{uri}"\nexperiment = "tiny-tests"\n'


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # creates the tables
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, empty_mlflow_db: Path) -> str:
    path = tmp_path / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    return f"sqlite:///{path}"


def all_runs(uri: str) -> list:
    """Every run in every experiment of the tracking store, deleted ones too."""
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL)


def steps(uri: str, run_id: str, metric: str) -> list[int]:
    return [m.step for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, metric)]


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_a_campaign_is_one_run_with_params_metrics_and_artifacts(
    write_campaign, tracking_uri, tmp_path
):
    config = load_config(write_campaign(budget=96, extra=tracking(tracking_uri)))
    run_campaign(config)

    [run] = all_runs(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    run_id = run.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    with Store(config.store_path, readonly=True) as store:
        assert store.meta.tracking_run == run_id
        scored = store.examples_scored("dev")
        candidates = store.count_prompts("dev")

    params = run.data.params
    assert params["campaign.name"] == "tiny" and params["budget.examples"] == "96"
    assert params["model.name"] == config.model.name and params["task.path"] == config.task.path
    assert params["searchers.0.type"] == "manual" and params["searchers.1.type"] == "random"
    assert params["searchers.1.batch_size"] == "3"
    assert json.loads(params["objective.names"]) == ["accuracy", "cross_entropy"]

    # Per turn, at step = search examples scored so far.
    best = steps(tracking_uri, run_id, "search.best.accuracy")
    assert len(best) >= 3 and best == sorted(best) and best[-1] == scored == 96
    history = client.get_metric_history(run_id, "search.candidates")
    assert history[-1].value == candidates
    assert steps(tracking_uri, run_id, "searcher.manual.best.cross_entropy")
    assert steps(tracking_uri, run_id, "searcher.random.best.accuracy")
    # At the end: the finalists, the pick and the ensembles, dev and test.
    metrics = run.data.metrics
    for name in ("pick", "rank1", "rank2", "ensemble.average"):
        assert {f"{name}.dev.accuracy", f"{name}.test.accuracy"} <= set(metrics), name
    assert metrics["campaign.examples_scored"] == 96
    assert run.data.tags["promptscout.stop_reason"] == "example budget spent"

    top = {a.path for a in client.list_artifacts(run_id)}
    assert top == {"config.json", "export", "report"}
    assert [a.path for a in client.list_artifacts(run_id, "export")] == ["export/tiny.json"]
    report = {a.path for a in client.list_artifacts(run_id, "report")}
    assert "report/report.html" in report and "report/report-progress.png" in report
    local = Path(client.download_artifacts(run_id, "export/tiny.json", str(tmp_path)))
    assert json.loads(local.read_text()) == json.loads(config.export_path.read_text())
    assert "<html>" in Path(client.download_artifacts(run_id, "report/report.html")).read_text()
    config_file = Path(client.download_artifacts(run_id, "config.json", str(tmp_path)))
    assert json.loads(config_file.read_text())["budget"]["examples"] == 96
    assert not Path("mlruns").exists()  # artifacts beside the database, not in the cwd


def test_an_interrupted_campaign_resumed_is_still_one_run(write_campaign, tracking_uri):
    config = load_config(write_campaign(budget=120, extra=RACING + tracking(tracking_uri)))
    with pytest.raises(KeyboardInterrupt):
        run_campaign(config, evaluator_factory=dying_factory(15))
    [run] = all_runs(tracking_uri)
    assert run.info.status == "KILLED"
    before = steps(tracking_uri, run.info.run_id, "search.candidates")
    assert before

    run_campaign(config)  # resume: same config, same store
    [after] = all_runs(tracking_uri)
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    logged = steps(tracking_uri, run.info.run_id, "search.candidates")
    assert logged[: len(before)] == before and max(logged) > max(before)
    assert "pick.test.accuracy" in after.data.metrics


def test_a_last_turn_cut_off_before_its_metrics_is_logged_by_the_resume(
    write_campaign, tracking_uri, monkeypatch
):
    # A kill between the last turn's save and its metrics (what a kill -9 can hit): the store
    # has spent the budget, so the resume has no turn left that would log it.
    config = load_config(write_campaign(budget=80, extra=tracking(tracking_uri)))
    turn_ended = MlflowTracker.turn_ended

    def killed_at_the_end(self, campaign, *args):
        if campaign.store.examples_scored("dev") >= 80:
            raise KeyboardInterrupt
        turn_ended(self, campaign, *args)

    monkeypatch.setattr(MlflowTracker, "turn_ended", killed_at_the_end)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(config)
    [run] = all_runs(tracking_uri)
    assert max(steps(tracking_uri, run.info.run_id, "search.candidates")) < 80

    monkeypatch.setattr(MlflowTracker, "turn_ended", turn_ended)
    run_campaign(config)
    with Store(config.store_path, readonly=True) as store:
        candidates = store.count_prompts("dev")
    history = MlflowClient(tracking_uri=tracking_uri).get_metric_history(
        run.info.run_id, "search.candidates"
    )
    last = max(history, key=lambda m: m.step)
    assert (last.step, last.value) == (80, candidates)
    assert "searcher.random.best.accuracy" in all_runs(tracking_uri)[0].data.metrics


def test_unknown_scheme_is_one_error_and_nothing_is_scored(capsys, write_campaign, tmp_path):
    path = write_campaign(budget=40, extra=tracking("ftp://example.invalid/mlflow"))
    code, err = cli(capsys, "run", str(path))
    assert code == 2
    [line] = error_lines(err)
    assert "scheme 'ftp'" in line and "sqlite:///" in line
    assert not any(f.exists() for f in Store.files(tmp_path / "tiny.db"))  # nothing stored


def test_mlflow_missing_is_one_error_naming_the_extra(
    capsys, write_campaign, tmp_path, tracking_uri, monkeypatch
):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    code, err = cli(capsys, "run", str(write_campaign(budget=40, extra=tracking(tracking_uri))))
    assert code == 2
    [line] = error_lines(err)
    assert "pip install 'promptscout[mlflow]'" in line
    assert not any(f.exists() for f in Store.files(tmp_path / "tiny.db"))  # nothing stored


def test_unreachable_server_is_one_error_at_the_start(capsys, write_campaign, tmp_path):
    # Port 9 (discard) on the loopback: nothing listens, the connection is refused at once.
    path = write_campaign(budget=40, extra=tracking("http://127.0.0.1:9"))
    started = time.time()
    code, err = cli(capsys, "run", str(path))
    assert code == 2 and time.time() - started < 60
    [line] = error_lines(err)
    assert "http://127.0.0.1:9" in line
    assert not any(f.exists() for f in Store.files(tmp_path / "tiny.db"))  # nothing stored


def test_an_error_mid_campaign_is_one_warning_and_the_campaign_goes_on(
    capsys, write_campaign, tracking_uri, monkeypatch
):
    config = load_config(write_campaign(budget=80, extra=tracking(tracking_uri)))
    calls = {"n": 0}
    log_batch = MlflowClient.log_batch

    def failing(self, run_id, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 4:  # params and a few turns, then the server "goes away"
            raise ConnectionError("the server went away")
        return log_batch(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", failing)
    board = run_campaign(config)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: MLflow")]
    assert len(warnings) == 1 and "the server went away" in warnings[0]
    assert board and calls["n"] == 4  # nothing tried after the error
    with Store(config.store_path, readonly=True) as store:
        assert store.meta.finished and store.examples_scored("dev") == 80


def _count(store: Path, table: str) -> int:
    """Rows of a store's table (read-only, safe while a writer runs)."""
    if not store.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def test_kill_9_then_resume_is_one_run(write_campaign, tracking_uri, tmp_path):
    path = write_campaign(budget=160, extra=tracking(tracking_uri))
    store = tmp_path / "tiny.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptscout", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    deadline = time.time() + 120
    # 8 evaluations: turns of 1 (manual's first, nothing leads yet), 3 (random), 1 and 3, so
    # at least two turns were logged.
    while _count(store, "evaluations") < 8:
        assert proc.poll() is None, "the campaign ended before it was killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [run] = all_runs(tracking_uri)
    assert run.info.status == "RUNNING"  # a killed process ends nothing
    before = steps(tracking_uri, run.info.run_id, "search.candidates")
    assert before

    resumed = subprocess.run(
        [sys.executable, "-m", "promptscout", "resume", str(store)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    [after] = all_runs(tracking_uri)
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    logged = steps(tracking_uri, run.info.run_id, "search.candidates")
    assert logged[: len(before)] == before and max(logged) == 160
    assert "pick.test.accuracy" in after.data.metrics
