"""Campaign observers: what else happens as a campaign runs, besides the store.

An observer is told when a run starts, when each turn ends (with the turn's outcomes) and when
the run finishes; it may read the store but must not write to it. The campaign builds its
observers from its file (``[tracking]``, ``[report]``, see
:func:`~promptscout.campaign.observers.observers_for`), and callers may add their own to
:attr:`Campaign.observers <promptscout.campaign.Campaign>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptscout.campaign.loop import Campaign, CampaignResult
    from promptscout.evaluation.outcome import Outcome


class CampaignObserver:
    """Override what you need; every hook does nothing by default."""

    def started(self, campaign: Campaign) -> None:
        """A run (the first, or a resume) starts."""

    def turn_ended(
        self, campaign: Campaign, searcher: str, outcomes: Sequence[Outcome], turn: int
    ) -> None:
        """A searcher's turn ended; its outcomes are stored and its state saved."""

    def finished(self, campaign: Campaign, result: CampaignResult) -> None:
        """The run finished: finalists re-scored, export written (then :meth:`closed`)."""

    def closed(self, campaign: Campaign, status: str) -> None:
        """The run ended: ``"finished"`` (after :meth:`finished`), ``"interrupted"`` or
        ``"failed"``; called last, however the run ended."""
