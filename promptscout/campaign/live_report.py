"""``[report] every = N``: the campaign rewrites its HTML report every N turns and at the end,
so it can be watched in a browser (reload the page) while the campaign runs.

The report is written atomically (:func:`promptscout.report.write_report` draws into a temporary
folder and replaces the page in one step), so a reload never sees half a page. Writing it is a
side show: a failure prints one warning line on stderr and the campaign goes on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from promptscout.campaign.observer import CampaignObserver

if TYPE_CHECKING:
    from promptscout.campaign.loop import Campaign, CampaignResult
    from promptscout.evaluation.outcome import Outcome


class LiveReport(CampaignObserver):
    """Rewrites the report every ``every`` turns and when the run finishes.

    Args:
        every: Turns between two rewrites (turns are counted over the whole campaign, resumes
            included: turn ``t`` rewrites when ``(t + 1) % every == 0``).
        path: The report's file; empty: the campaign store's path with ``.html``.
    """

    def __init__(self, every: int, path: str | Path = "") -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.every = every
        self.path = Path(path) if path else None
        self.written = 0  # reports written by this observer
        self.warned: set[str] = set()  # why writing failed (each reason warned about once)

    def target(self, campaign: Campaign) -> Path:
        return self.path or campaign.store.path.with_suffix(".html")

    def turn_ended(
        self, campaign: Campaign, searcher: str, outcomes: Sequence[Outcome], turn: int
    ) -> None:
        if (turn + 1) % self.every == 0:
            self.write(campaign)

    def finished(self, campaign: Campaign, result: CampaignResult) -> None:
        self.write(campaign)

    def write(self, campaign: Campaign) -> None:
        """Write the report now; on failure warn (once per distinct reason) and go on."""
        from promptscout.report import write_report

        path = self.target(campaign)
        try:
            write_report(campaign.store, path)
        except Exception as exc:  # noqa: BLE001 - the report must never stop the campaign
            reason = f"{type(exc).__name__}: {exc}"
            if reason not in self.warned:
                self.warned.add(reason)
                print(f"warning: could not write the report {path}: {reason}", file=sys.stderr)
            return
        self.written += 1
