"""Typed access to a campaign store's ``meta`` table: every key the campaign writes, in one place.

The store keeps JSON values under string keys; this class names them, gives them types, and says
who writes each one and when. Readers (leaderboard, report, export) and the campaign use it
instead of spelling keys.

Example:
    >>> from promptscout.store import Store
    >>> with Store("runs/sst2-demo.db", readonly=True) as store:  # doctest: +SKIP
    ...     store.meta.search_examples[:2], store.meta.search_split
    (('dev-0', 'dev-1'), 'dev')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptscout.objectives import Ranking

if TYPE_CHECKING:
    from promptscout.store import Store


@dataclass(frozen=True)
class Cursor:
    """Whose turn it is, and the size of the ask in flight (None between turns): saved with
    every turn, so a resumed campaign continues with the same searcher and the same ask size."""

    turn: int = 0
    n: int | None = None


class CampaignMeta:
    """The meta entries of one store.

    Written when the campaign is created (:meth:`record_start`): ``config``, ``ranking``,
    ``search_examples``, ``holdout_examples`` (a sample of them may replace them before the
    finalists are re-scored), ``label_words``; when the evaluator is first built:
    ``fingerprint``; after every turn (:meth:`end_turn`, one transaction with the searcher's
    state): ``incumbent``, ``cursor`` and the searcher's report; at the end: ``selection`` and
    ``pick`` (:mod:`promptscout.campaign.selection`), ``intervals`` and ``ensembles``
    (:mod:`promptscout.ensemble.finalize`), ``finished`` and ``stop_reason``; when an MLflow
    run is opened (:mod:`promptscout.campaign.tracking`): ``tracking_run``.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def _get(self, key: str, default: Any = None) -> Any:
        return self._store.get_meta(key, default)

    # -- written once, at the start ---------------------------------------------------------

    def record_start(
        self,
        config: dict[str, Any],
        ranking: Ranking,
        search_examples: list[str],
        holdout_examples: list[str],
        label_words: list[str],
    ) -> None:
        for key, value in (
            ("config", config),
            ("ranking", ranking.to_dict()),
            ("search_examples", search_examples),
            ("holdout_examples", holdout_examples),
            ("label_words", label_words),
        ):
            self._store.set_meta(key, value)

    @property
    def config(self) -> dict[str, Any] | None:
        """The campaign file as :meth:`CampaignConfig.to_dict` wrote it (None: no campaign)."""
        return self._get("config")

    @property
    def ranking(self) -> Ranking:
        return Ranking.from_dict(self._get("ranking"))

    @property
    def objective_names(self) -> list[str]:
        return list(self._config["objective"]["names"])

    def dollars(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What these tokens cost at the ``[model]`` prices; None when the model is not priced."""
        model = self._config["model"]
        rates = model.get("price_per_1k_input", 0.0), model.get("price_per_1k_output", 0.0)
        if not any(rates):
            return None
        return (prompt_tokens * rates[0] + completion_tokens * rates[1]) / 1000

    @property
    def search_split(self) -> str:
        return str(self._config["task"]["search_split"])

    @property
    def holdout_split(self) -> str:
        return str(self._config["task"]["holdout_split"])

    @property
    def search_examples(self) -> tuple[str, ...]:
        """The search split's example ids: what a candidate is scored on in full."""
        return tuple(self._get("search_examples") or ())

    @property
    def holdout_examples(self) -> tuple[str, ...]:
        """The held-out split's ids (empty when the task has none)."""
        return tuple(self._get("holdout_examples") or ())

    @holdout_examples.setter
    def holdout_examples(self, ids: list[str]) -> None:
        """Fewer held-out ids, chosen before the finalists are re-scored
        (:mod:`promptscout.campaign.rescore`)."""
        self._store.set_meta("holdout_examples", list(ids))

    @property
    def label_words(self) -> tuple[str, ...]:
        return tuple(self._get("label_words") or ())

    @property
    def _config(self) -> dict[str, Any]:
        config = self.config
        if config is None:
            raise KeyError("the store holds no campaign")
        return config

    # -- the model --------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str | None:
        return self._get("fingerprint")

    @fingerprint.setter
    def fingerprint(self, value: str | None) -> None:
        self._store.set_meta("fingerprint", value)

    # -- tracking ---------------------------------------------------------------------------

    @property
    def tracking_run(self) -> str | None:
        """The id of the MLflow run the campaign is tracked in (``[tracking] mlflow``), so that
        a resume continues that run; None: never tracked."""
        return self._get("tracking_run")

    @tracking_run.setter
    def tracking_run(self, value: str | None) -> None:
        self._store.set_meta("tracking_run", value)

    # -- every turn -------------------------------------------------------------------------

    @property
    def cursor(self) -> Cursor:
        data = self._get("cursor") or {}
        return Cursor(int(data.get("turn", 0)), data.get("n"))

    def start_ask(self, cursor: Cursor) -> None:
        """Save the size of the ask about to be made (before the searcher is asked)."""
        self._store.set_meta("cursor", {"turn": cursor.turn, "n": cursor.n})

    @property
    def incumbent(self) -> str | None:
        """The key of the best candidate on the whole search split after the last turn."""
        return self._get("incumbent")

    def end_turn(
        self,
        searcher: str,
        state: dict[str, Any],
        report: dict[str, Any],
        incumbent: str | None,
        cursor: Cursor,
    ) -> None:
        """One transaction ends a turn: the searcher's state and report, the incumbent and the
        cursor, so a kill between two turns resumes exactly."""
        self._store.end_turn(
            searcher,
            state,
            {
                f"report:{searcher}": report,
                "incumbent": incumbent,
                "cursor": {"turn": cursor.turn, "n": cursor.n},
            },
        )

    def searcher_report(self, searcher: str) -> dict[str, Any] | None:
        """What the searcher's reporting hooks said after its last turn
        (:meth:`~promptscout.searchers.Searcher.report`)."""
        return self._get(f"report:{searcher}")

    def set_searcher_report(self, searcher: str, report: dict[str, Any]) -> None:
        self._store.set_meta(f"report:{searcher}", report)

    # -- the end ----------------------------------------------------------------------------

    @property
    def intervals(self) -> dict[str, Any]:
        """``{prompt key: {"test": {objective: [low, high]}}}`` of the finalists."""
        return self._get("intervals") or {}

    @intervals.setter
    def intervals(self, value: dict[str, Any]) -> None:
        self._store.set_meta("intervals", value)

    @property
    def ensembles(self) -> list[dict[str, Any]]:
        """The ensemble rows (see :mod:`promptscout.ensemble.finalize`)."""
        return list(self._get("ensembles") or [])

    @ensembles.setter
    def ensembles(self, value: list[dict[str, Any]]) -> None:
        self._store.set_meta("ensembles", value)

    @property
    def selection(self) -> list[dict[str, Any]]:
        """The finalists in the order selection put them, best first, each with its evidence
        (:mod:`promptscout.campaign.selection`); empty before the campaign's end."""
        return list(self._get("selection") or [])

    @selection.setter
    def selection(self, value: list[dict[str, Any]]) -> None:
        self._store.set_meta("selection", value)

    @property
    def pick(self) -> str | None:
        """The key of the campaign's pick when it is an ensemble (a prompt pick is the first of
        :attr:`selection`)."""
        return self._get("pick")

    @pick.setter
    def pick(self, value: str | None) -> None:
        self._store.set_meta("pick", value)

    @property
    def finished(self) -> bool:
        return bool(self._get("finished", False))

    @property
    def stop_reason(self) -> str | None:
        return self._get("stop_reason")

    def finish(self, reason: str) -> None:
        self._store.set_meta("finished", True)
        self._store.set_meta("stop_reason", reason)
