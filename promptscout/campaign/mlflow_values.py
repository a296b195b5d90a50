"""What MLflow accepts: a tracking URI's scheme, names and values cut to MLflow's limits, a
campaign's config flattened into params. Used by :mod:`promptscout.campaign.tracking`; MLflow
itself is imported only to read its limits."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError

# The tracking URI schemes MLflow knows (its own stores; plug-ins add theirs through the entry
# point group "mlflow.tracking_store"). No scheme is a local folder, as in MLflow.
SCHEMES = frozenset(
    {"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks"}
    | {"databricks-uc", "uc"}
)

# MLflow's limits (mlflow.utils.validation), used if that module does not say.
PARAM_VALUE_LIMIT = 6000
TAG_VALUE_LIMIT = 5000
KEY_LIMIT = 250
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000

# While the run is opened: how long MLflow may try to reach a server, so that one that is down
# is reported in seconds (MLflow's defaults retry for minutes). A value set in the environment
# wins.
START_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def check_uri(uri: str) -> None:
    """Refuse a tracking URI whose scheme MLflow has no store for (before anything runs)."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if not scheme and ":" in uri:  # "file:/path" and other one-colon forms
        scheme = uri.split(":", 1)[0].lower()
    if scheme in SCHEMES:
        return
    plugins = {ep.name for ep in entry_points(group="mlflow.tracking_store")}
    if scheme not in plugins:
        known = ", ".join(sorted(s for s in SCHEMES | plugins if s))
        raise PromptscoutError(
            f"[tracking] mlflow: {uri!r} has the URI scheme '{scheme}', which MLflow has no "
            f"tracking store for; use one of {known} (e.g. sqlite:///runs/mlflow.db)"
        )


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for others and in-memory ones)."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def quick_http() -> Iterator[None]:
    """MLflow's HTTP retries and timeout cut to :data:`START_HTTP` unless the environment sets
    them (MLflow reads them on every request)."""
    added = {k: v for k, v in START_HTTP.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def mlflow_limit(name: str, default: int) -> int:
    try:
        from mlflow.utils import validation

        return int(getattr(validation, name, default))
    except ImportError:  # pragma: no cover - checked when the tracker is built
        return default


def metric_key(name: str) -> str:
    """An MLflow param or metric name: alphanumerics, ``_ - . space`` (others become ``_``)."""
    return re.sub(r"[^\w.\- ]", "_", name)[:KEY_LIMIT]


def cut_text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def flatten_config(config: Mapping[str, Any], limit: int = PARAM_VALUE_LIMIT) -> dict[str, str]:
    """The stored config as MLflow params: ``[campaign]``'s options as ``campaign.<option>``,
    each table's as ``<table>.<option>`` (nested tables dotted further), each searcher's type
    and options as ``searchers.<i>.type``, ``searchers.<i>.<option>``; values as text (JSON for
    all but strings), cut to ``limit`` characters."""
    params: dict[str, str] = {}

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                add(f"{prefix}.{key}", inner)
        else:
            params[metric_key(prefix)] = cut_text(value, limit)

    for key, value in config.items():
        if key == "searchers":
            for i, spec in enumerate(value or []):
                params[f"searchers.{i}.type"] = cut_text(spec.get("type", ""), limit)
                for option, inner in (spec.get("options") or {}).items():
                    add(f"searchers.{i}.{option}", inner)
        elif isinstance(value, Mapping):
            add(key, value)
        else:
            add(f"campaign.{key}", value)
    return params
