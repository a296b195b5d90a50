"""The observers a campaign file asks for: a live report (``[report] every``) and MLflow
tracking (``[tracking] mlflow``)."""

from __future__ import annotations

from typing import Any

from promptscout.campaign.live_report import LiveReport
from promptscout.campaign.observer import CampaignObserver
from promptscout.campaign.tracking import MlflowTracker


def observers_for(config: Any) -> list[CampaignObserver]:
    """The observers a campaign file asks for (``[tracking] mlflow``, ``[report] every``)."""
    observers: list[CampaignObserver] = []
    if config.report.every:
        observers.append(LiveReport(config.report.every, config.report.path))
    if config.tracking.mlflow:
        observers.append(MlflowTracker(config.tracking.mlflow, config.tracking.experiment))
    return observers
