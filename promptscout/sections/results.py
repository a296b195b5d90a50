"""The tables of what a campaign makes of its scores: ``[leaderboard]``, ``[selection]``,
``[tracking]`` and ``[report]``."""

from __future__ import annotations

from dataclasses import dataclass

from promptscout.options import OptionError, option, require_non_negative

DEFAULT_ENSEMBLES = ("average", "weighted")


@dataclass
class LeaderboardConfig:
    """The ``[leaderboard]`` table: finalists re-scored on the holdout split, and ensembles of
    them (see :mod:`promptscout.ensemble`)."""

    top_k: int = option(4, help="Finalists re-scored on the holdout split.")
    ensembles: list[str] | None = option(
        None,
        help="Rows pooling the finalists' outputs: average | vote | weighted (default: average "
        "and weighted when top_k is 2 or more; [] for none).",
    )
    ensemble_size: int = option(0, help="Members: the best this many finalists (0: all top_k).")
    calibrate: bool = option(
        False, help="Contextual calibration: a calibrated row per finalist and ensemble."
    )
    rescore_minutes: float | None = option(
        None,
        help="Re-score the finalists on as many held-out examples as their measured speed "
        "buys in about this many minutes (at least 100; unset: all, up to [task] "
        "holdout_limit).",
    )

    def __post_init__(self) -> None:
        from promptscout.ensemble.types import METHODS

        require_non_negative(self, ["top_k"])
        if self.rescore_minutes is not None and self.rescore_minutes <= 0:
            raise OptionError("rescore_minutes", f"must be positive, got {self.rescore_minutes}")
        if self.ensembles is None:  # the leaderboard pools its finalists unless told otherwise
            self.ensembles = list(DEFAULT_ENSEMBLES) if self.top_k >= 2 else []
        unknown = [m for m in self.ensembles if m not in METHODS]
        if unknown:
            raise OptionError(
                "ensembles", f"unknown method {unknown[0]!r}; use {', '.join(METHODS)}"
            )
        if self.ensembles and self.top_k < 2:
            raise OptionError("ensembles", "ensembles pool finalists: set top_k to 2 or more")
        if self.ensemble_size == 1 or self.ensemble_size < 0:
            raise OptionError("ensemble_size", "must be 2 or more (or 0 for all top_k finalists)")
        if self.ensemble_size > self.top_k:
            raise OptionError(
                "ensemble_size",
                f"members must be finalists: {self.ensemble_size} > top_k = {self.top_k}",
            )


@dataclass
class SelectionConfig:
    """The ``[selection]`` table: how the campaign picks among its best candidates (see
    :mod:`promptscout.campaign.selection`)."""

    pool: int = option(
        8,
        help="Candidates, the best by the search split, compared again on more evidence for the "
        "pick (0: the search split alone decides).",
    )
    validation: bool = option(
        True,
        help="Also score them on the training examples they never learned from (all but their "
        "own demonstrations; not for searchers trained on the training labels).",
    )
    z: float = option(
        1.0,
        help="An ensemble is picked over the best prompt when its paired advantage on held-out "
        "validation examples is above 0 with this many standard errors.",
    )

    def __post_init__(self) -> None:
        require_non_negative(self, ("pool", "z"))


@dataclass
class TrackingConfig:
    """The ``[tracking]`` table: where the campaign is also recorded, besides its store."""

    mlflow: str = option(
        "",
        help="An MLflow tracking URI (file:..., sqlite:///..., http://...): one MLflow run per "
        "campaign, continued on resume (needs the mlflow extra; empty: off).",
    )
    experiment: str = option("promptscout", help="The MLflow experiment the run goes into.")


@dataclass
class ReportConfig:
    """The ``[report]`` table: the HTML report written while the campaign runs."""

    every: int = option(
        0,
        help="Rewrite the report every this many turns, and at the end, to watch it in a "
        "browser (0: only on `promptscout report`).",
    )
    path: str = option("", help="The report's file (default: the store path with .html).")

    def __post_init__(self) -> None:
        require_non_negative(self, ["every"])
