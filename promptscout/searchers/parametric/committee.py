"""A committee of PEFT adapters (``members`` of 2 or more): adapters trained side by side that
differ only by their seeds, pooled at the campaign's end.

With 32 training examples, which adapter a run ends with depends on luck more than on anything
a search split can see: on MR the same LoRA recipe with another seeded pair of demonstrations
(and start and example order) moved test accuracy by 3.3 points (split seed 13, 0.8117 to
0.8450; ``benchmarks/peft_methods.py``). The mean of several such adapters' class
probabilities removes that luck: it never has a higher cross-entropy than the members' average
(the log-loss is convex).

Each member is a :class:`~promptscout.searchers.parametric.searcher.PeftSearcher` with its own
seed (the first with the searcher's, so it is exactly the adapter ``members = 1`` trains); each
``ask`` trains one round of every member still training and proposes one adapter per member,
so a minutes budget that ends the search leaves members trained alike. Each member early-stops
on its own. :meth:`PeftCommittee.committee` names every member's best proposal so far; the
campaign's end pools them as one candidate (:mod:`promptscout.campaign.finish`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptscout.prompts import Prompt
from promptscout.searchers.base import Curve, Outcome, SearchContext, Searcher
from promptscout.searchers.parametric.config import PeftSearcherConfig


def member_seed(seed: int, member: int) -> int:
    """The seed of a committee's ``member``: the searcher's own for the first, a derived one
    for each other."""
    if member == 0:
        return seed
    return int(np.random.SeedSequence([seed, member]).generate_state(1)[0])


def member_context(context: SearchContext, member: int) -> SearchContext:
    """The search context of a committee's ``member``: the campaign's, with the member's seed."""
    return dataclasses.replace(context, seed=member_seed(context.seed, member))


def member_curves(name: str, members: Sequence[Searcher]) -> list[Curve]:
    """Every member's training curves, titled by the committee's name and the member."""
    return [
        dataclasses.replace(curve, title=f"{name} member {j}: training loss per epoch")
        for j, member in enumerate(members)
        for curve in member.curves()
    ]


class PeftCommittee(Searcher):
    """``members`` PEFT adapters trained side by side (see the module docstring); what the
    ``peft`` type builds when ``members`` is 2 or more."""

    type_name = "peft"
    config_class = PeftSearcherConfig
    config: PeftSearcherConfig
    state_version = 1
    reads_train_labels = True

    def __init__(
        self, config: PeftSearcherConfig, context: SearchContext, member: type[Searcher]
    ) -> None:
        """``member``: the one-adapter searcher class (:class:`PeftSearcher`) each member is."""
        super().__init__(config, context)
        self.members: list[Any] = [
            member(config.member_options(j), member_context(context, j))
            for j in range(config.members)
        ]

    def check(self) -> None:
        """Build every member's trainer; with ``templates``, the first member chooses and the
        others train its choice (one choice, and members that differ only by their seeds), or
        with ``template_choice = "per_member"`` each trains its own."""
        first, *others = self.members
        first.check()
        for member in others:
            if not member.template_chosen:  # it has the candidates the first chose among
                member.base = dataclasses.replace(member.base, template=first.base.template)
                member.template_chosen = True
            member.check()

    def ask(self, n: int) -> list[Prompt]:
        if n < 1:
            return []
        proposals = []
        for j, member in enumerate(self.members):
            for prompt in member.ask(1) if not member.exhausted else []:
                metadata = {**prompt.metadata, "member": j}
                proposals.append(dataclasses.replace(prompt, metadata=metadata))
        return proposals

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        for member in self.members:
            mine = [o for o in outcomes if o.prompt.soft in member.asked]
            if mine:
                member.tell(mine)

    @property
    def exhausted(self) -> bool:
        return all(member.exhausted for member in self.members)

    def soft_tensors(self, digest: str) -> dict[str, np.ndarray] | None:
        for member in self.members:
            tensors = member.soft_tensors(digest)
            if tensors is not None:
                return tensors
        return None

    def committee(self) -> list[str]:
        """Every member's best proposal so far (a member the budget stopped keeps its best):
        the adapters the campaign's end pools."""
        return [
            dataclasses.replace(member.base, soft=member.best["digest"]).key
            for member in self.members
            if member.best is not None
        ]

    def curves(self) -> list[Curve]:
        return member_curves(self.name, self.members)

    def save(self) -> dict[str, Any]:
        return {"members": [member.save() for member in self.members]}

    def restore(self, state: dict[str, Any]) -> None:
        for member, saved in zip(self.members, state["members"], strict=True):
            member.restore(saved)
