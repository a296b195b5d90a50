"""Campaigns: the search loop (:mod:`.loop`), its budget (:mod:`.budget`), its end
(:mod:`.finish`).

Resuming is the same loop started from the store: searcher states are restored, prompts a
searcher asks for again that are already scored are told from the store at no cost, and the
budget counts what the store says was spent. So a campaign killed at any point and resumed ends
where an uninterrupted one would.
"""

from promptscout.campaign.loop import IDLE_ROUNDS, Campaign, CampaignResult, searcher_seed

__all__ = ["IDLE_ROUNDS", "Campaign", "CampaignResult", "searcher_seed"]
