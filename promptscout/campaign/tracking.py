"""MLflow tracking of a campaign (``[tracking] mlflow = "URI"``): one MLflow run per campaign.

What the run holds:

- params: the campaign's config as the store keeps it, flattened (``campaign.seed``,
  ``model.name``, ``task.name``, ``budget.examples``, ``searchers.0.type``,
  ``searchers.0.batch_size`` ...), values cut to MLflow's length limits;
- metrics after every turn, at step = the search-split examples scored so far:
  ``search.candidates`` (prompts scored on the search split), ``search.best.<objective>`` (the
  objective values of the best candidate so far on the whole search split, by the campaign's
  ranking; ``search.best.ranking_score`` too when it is weighted) and the same per searcher,
  ``searcher.<name>.best.<objective>``;
- metrics at the end: ``rank<N>.dev.<objective>`` and ``rank<N>.test.<objective>`` of the
  leaderboard's rows that were re-scored on the held-out split, ``pick.dev.<objective>`` /
  ``pick.test.<objective>`` (the first row), ``ensemble.<method>.dev|test.<objective>``, and
  ``campaign.examples_scored``, ``campaign.evaluations`` (``campaign.dollars`` when priced);
- tags: ``promptscout.store`` (the store's path), ``promptscout.stop_reason``,
  ``promptscout.pick`` (the pick, described);
- artifacts: ``export/`` (the export JSON, and its soft-prompt tensors file when there is one),
  ``report/`` (the HTML report and its PNGs) and ``config.json`` (the store's config).

The run's id is kept in the store (:attr:`CampaignMeta.tracking_run
<promptscout.meta.CampaignMeta.tracking_run>`): a resumed campaign reopens the same run, also
after a kill -9 (which leaves the run RUNNING), and first logs the turn metrics a kill cut
off. The run ends FINISHED, or KILLED (interrupted) or FAILED. Tracking never costs stored
results: problems found at the start (MLflow missing, an unknown URI scheme, a store or server
that cannot be reached) are one error before anything is scored; an MLflow error later is one
warning on stderr, tracking stops and the campaign goes on.

MLflow is an optional extra (``pip install 'promptscout[mlflow]'``) and is imported here only.
"""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptscout.campaign.mlflow_values import (
    METRICS_PER_BATCH,
    PARAM_VALUE_LIMIT,
    PARAMS_PER_BATCH,
    TAG_VALUE_LIMIT,
    check_uri,
    cut_text,
    flatten_config,
    metric_key,
    mlflow_limit,
    quick_http,
    sqlite_path,
)
from promptscout.campaign.observer import CampaignObserver
from promptscout.errors import PromptscoutError, first_line

if TYPE_CHECKING:
    from promptscout.campaign.loop import Campaign, CampaignResult
    from promptscout.evaluation.outcome import Outcome

INSTALL = "pip install 'promptscout[mlflow]'"

# Rows of the end's leaderboard logged as metrics, at most.
FINAL_ROWS = 50


def _reason(exc: BaseException) -> str:
    return first_line(exc) or type(exc).__name__


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class MlflowTracker(CampaignObserver):
    """Records a campaign in one MLflow run (see the module's docstring for what it logs).

    Args:
        uri: The MLflow tracking URI (``sqlite:///runs/mlflow.db``, ``http://host:5000``, ...).
        experiment: The experiment a new run goes into (created when missing; for a
            ``sqlite:///`` store with its artifacts in ``mlartifacts/`` beside the database).

    Raises:
        PromptscoutError: MLflow is not installed, or the URI's scheme is not MLflow's.
    """

    def __init__(self, uri: str, experiment: str = "promptscout") -> None:
        check_uri(uri)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            if getattr(exc, "name", None) in (None, "mlflow", "mlflow.tracking"):
                raise PromptscoutError(
                    f"[tracking] mlflow needs MLflow, which is not installed: {INSTALL}"
                ) from None
            raise PromptscoutError(
                f"[tracking] mlflow: MLflow does not import ({_reason(exc)}); reinstall "
                f"it: {INSTALL}"
            ) from None
        self.uri = uri
        self.experiment = experiment or "promptscout"
        self._client_class = MlflowClient
        self._client: Any = None  # None: not started, ended, or stopped by an error
        self.run_id: str | None = None
        self._best: tuple[float, dict[str, float]] | None = None
        self._searcher_best: dict[str, tuple[float, dict[str, float]]] = {}

    # -- the hooks ----------------------------------------------------------------------------

    def started(self, campaign: Campaign) -> None:
        path = sqlite_path(self.uri)
        with quick_http():
            try:
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                client = self._client_class(tracking_uri=self.uri)
                run_id, resumed = self._open_run(client, campaign)
            except PromptscoutError:
                raise
            except Exception as exc:
                raise PromptscoutError(
                    f"[tracking] mlflow: cannot track in MLflow at {self.uri}: {_reason(exc)}"
                ) from None
        campaign.meta.tracking_run = run_id
        self._client, self.run_id = client, run_id
        self._read_best(campaign)
        self._guard(self._log_start, campaign, resumed)

    def turn_ended(
        self, campaign: Campaign, searcher: str, outcomes: Sequence[Outcome], turn: int
    ) -> None:
        if self._client is None:
            return
        ranking = campaign.ranking
        for outcome in outcomes:
            if outcome.complete and outcome.evaluation.ok:
                self._consider(searcher, outcome.evaluation.objectives, ranking.score)
        self._guard(self._log_turn, campaign, searcher)

    def finished(self, campaign: Campaign, result: CampaignResult) -> None:
        if self._client is None:
            return
        self._guard(self._log_end, campaign, result)
        if self._client is not None:
            self._guard(self._client.set_terminated, self.run_id, "FINISHED")
        self._client = None

    def closed(self, campaign: Campaign, status: str) -> None:
        if self._client is None:  # ended by finished(), or never started
            return
        state = {"finished": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self._guard(self._client.set_terminated, self.run_id, state)
        self._client = None

    # -- opening the run ----------------------------------------------------------------------

    def _open_run(self, client: Any, campaign: Campaign) -> tuple[str, bool]:
        """The stored run reopened (RUNNING again), or a new run; and whether it was reopened."""
        from mlflow.exceptions import MlflowException

        previous = campaign.meta.tracking_run
        if previous:
            try:
                run = client.get_run(previous)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                run = None
            if run is not None and run.info.lifecycle_stage == "active":
                client.update_run(previous, status="RUNNING")
                return previous, True
            _log(
                f"MLflow run {previous} of this campaign is not in {self.uri} (deleted?): "
                "tracking goes on in a new run"
            )
        run = client.create_run(
            self._experiment_id(client),
            run_name=campaign.config.name,
            tags={
                "promptscout.store": str(Path(campaign.store.path).resolve()),
                "mlflow.source.name": str(campaign.config.source),
            },
        )
        return run.info.run_id, False

    def _experiment_id(self, client: Any) -> str:
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            path = sqlite_path(self.uri)
            location = None
            if path is not None:  # artifacts beside the database, not in the working folder
                name = re.sub(r"[^\w.-]", "_", self.experiment)
                location = (path.resolve().parent / "mlartifacts" / name).as_uri()
            try:
                return str(client.create_experiment(self.experiment, artifact_location=location))
            except MlflowException:  # created meanwhile by another process
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise PromptscoutError(
                f"[tracking] experiment '{self.experiment}' is deleted in {self.uri}; restore "
                "it (mlflow experiments restore) or set another [tracking] experiment"
            )
        return str(found.experiment_id)

    # -- what is logged -----------------------------------------------------------------------

    def _guard(self, action: Any, *args: Any) -> None:
        """Run one MLflow action; on an error, warn once and stop tracking."""
        if self._client is None:
            return
        try:
            action(*args)
        except Exception as exc:
            _log(
                f"warning: MLflow tracking stopped ({_reason(exc)}); the campaign goes on "
                "and keeps every result in its store"
            )
            self._client = None

    def _log_batch(
        self, metrics: Sequence[Any] = (), params: Sequence[Any] = (), tags: Sequence[Any] = ()
    ) -> None:
        per_batch = mlflow_limit("MAX_PARAMS_TAGS_PER_BATCH", PARAMS_PER_BATCH)
        for i in range(0, len(params), per_batch):
            self._client.log_batch(self.run_id, params=list(params[i : i + per_batch]))
        for i in range(0, len(tags), per_batch):
            self._client.log_batch(self.run_id, tags=list(tags[i : i + per_batch]))
        per_batch = mlflow_limit("MAX_METRICS_PER_BATCH", METRICS_PER_BATCH)
        for i in range(0, len(metrics), per_batch):
            self._client.log_batch(self.run_id, metrics=list(metrics[i : i + per_batch]))

    def _log_start(self, campaign: Campaign, resumed: bool) -> None:
        """The config as params (a reopened run keeps those it has: params cannot change)."""
        from mlflow.entities import Param

        config = campaign.meta.config or campaign.config.to_dict()
        limit = mlflow_limit("MAX_PARAM_VAL_LENGTH", PARAM_VALUE_LIMIT)
        params = flatten_config(config, limit)
        if resumed:
            logged = self._client.get_run(self.run_id).data.params
            params = {k: v for k, v in params.items() if k not in logged}
        self._log_batch(params=[Param(k, v) for k, v in params.items()])
        if resumed:
            self._catch_up(campaign)

    def _catch_up(self, campaign: Campaign) -> None:
        """Log where the search stands if the run's metrics are behind the store: a kill -9
        between a turn's save and its metrics leaves that turn unlogged, and when it was the
        last turn no later turn would log it."""
        scored = campaign.store.examples_scored(campaign.search_split)
        history = self._client.get_metric_history(self.run_id, metric_key("search.candidates"))
        if scored > max((m.step for m in history), default=0):
            values = self._search_values(campaign)
            for searcher in self._searcher_best:
                values.update(self._searcher_values(campaign, searcher))
            self._log_metrics(values, scored)

    def _read_best(self, campaign: Campaign) -> None:
        """The best so far of a resumed campaign, from its store (whole search split only)."""
        self._best, self._searcher_best = None, {}
        score = campaign.ranking.score
        store = campaign.store
        for stored in store.evaluations(campaign.search_split, campaign.search_ids):
            if stored.evaluation.ok:
                self._consider(stored.searcher, stored.evaluation.objectives, score)

    def _consider(self, searcher: str, values: Mapping[str, float], score: Any) -> None:
        value = score(values)
        if not math.isfinite(value):
            return
        if self._best is None or value > self._best[0]:
            self._best = (value, dict(values))
        mine = self._searcher_best.get(searcher)
        if mine is None or value > mine[0]:
            self._searcher_best[searcher] = (value, dict(values))

    def _values(self, prefix: str, best: tuple[float, Mapping[str, float]], weighted: bool):
        out = {f"{prefix}.{name}": value for name, value in best[1].items()}
        if weighted:
            out[f"{prefix}.ranking_score"] = best[0]
        return out

    def _log_turn(self, campaign: Campaign, searcher: str) -> None:
        values = self._search_values(campaign)
        values.update(self._searcher_values(campaign, searcher))
        self._log_metrics(values, campaign.store.examples_scored(campaign.search_split))

    def _search_values(self, campaign: Campaign) -> dict[str, float]:
        """``search.candidates`` and the best so far of the whole campaign."""
        values = {"search.candidates": float(campaign.store.count_prompts(campaign.search_split))}
        if self._best is not None:
            values.update(self._values("search.best", self._best, bool(campaign.ranking.weights)))
        return values

    def _searcher_values(self, campaign: Campaign, searcher: str) -> dict[str, float]:
        """One searcher's best so far (nothing before it scored one)."""
        mine = self._searcher_best.get(searcher)
        if mine is None:
            return {}
        return self._values(f"searcher.{searcher}.best", mine, bool(campaign.ranking.weights))

    def _log_metrics(self, values: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        for name, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                metrics.append(Metric(metric_key(name), number, now, int(step)))
        self._log_batch(metrics=metrics)

    def _log_end(self, campaign: Campaign, result: CampaignResult) -> None:
        from mlflow.entities import RunTag

        entries = result.leaderboard
        values: dict[str, Any] = {
            "campaign.examples_scored": result.examples_scored,
            "campaign.evaluations": result.evaluations,
        }
        if result.dollars is not None:
            values["campaign.dollars"] = result.dollars

        def row(prefix: str, entry: Any) -> None:
            for split, scores in (("dev", entry.dev), ("test", entry.test)):
                for name, value in (scores or {}).items():
                    values[f"{prefix}.{split}.{name}"] = value

        for entry in [e for e in entries if e.test is not None][:FINAL_ROWS]:
            row(f"rank{entry.rank}", entry)
        if entries:
            row("pick", entries[0])
        seen: dict[str, int] = {}
        for entry in entries:
            if entry.kind == "ensemble":
                name = entry.prompt.method + ("_calibrated" if entry.prompt.calibrate else "")
                seen[name] = seen.get(name, 0) + 1
                row(f"ensemble.{name}" + (f"{seen[name]}" if seen[name] > 1 else ""), entry)
        self._log_metrics(values, result.examples_scored)

        from promptscout.leaderboard import describe

        limit = mlflow_limit("MAX_TAG_VAL_LENGTH", TAG_VALUE_LIMIT)
        tags = [RunTag("promptscout.stop_reason", cut_text(result.stop_reason, limit))]
        if entries:
            tags.append(RunTag("promptscout.pick", cut_text(describe(entries[0].prompt), limit)))
            tags.append(RunTag("promptscout.pick_key", entries[0].prompt.key))
        self._log_batch(tags=tags)
        self._log_artifacts(campaign)

    def _log_artifacts(self, campaign: Campaign) -> None:
        from promptscout.report import write_report

        client, run_id = self._client, self.run_id
        export = Path(campaign.config.export_path)
        if export.exists():
            client.log_artifact(run_id, str(export), "export")
            # The tensors file the export names (beside it, by a relative name).
            payload = json.loads(export.read_text(encoding="utf-8"))
            named = payload.get("soft_tensors")
            if named and (export.parent / named).exists():
                client.log_artifact(run_id, str(export.parent / named), "export")
            # PEFT adapter folders, under the same relative names as beside the export.
            for folder in ((payload.get("adapters") or {}).get("folders") or {}).values():
                if (export.parent / folder).is_dir():
                    client.log_artifacts(run_id, str(export.parent / folder), f"export/{folder}")
        config = campaign.meta.config or campaign.config.to_dict()
        client.log_dict(run_id, config, "config.json")
        with tempfile.TemporaryDirectory(prefix="promptscout-report-") as folder:
            write_report(campaign.store, Path(folder) / "report.html")
            client.log_artifacts(run_id, folder, "report")
