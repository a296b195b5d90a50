"""APE (Zhou et al., 2023): the proposer reads training demonstrations and writes the
instruction that would have produced them; later rounds resample around the best prompts so far
(APE's iterative Monte Carlo search).

Round 1 sends ``writes_per_round`` meta-prompts, each with its own seeded sample of
``demos_per_write`` examples; every later round asks for variations of the ``resample_top``
best prompts, each variation noting its parent.
"""

from __future__ import annotations

from typing import ClassVar

from promptscout.searchers.writers.base import WriterSearcher, Written
from promptscout.searchers.writers.config import ApeConfig
from promptscout.searchers.writers.meta_prompts import Sections, fill


class ApeSearcher(WriterSearcher):
    """Instructions induced from demonstrations, then resampled around the best."""

    type_name = "ape"
    config_class = ApeConfig
    config: ApeConfig
    sections: ClassVar[Sections] = {
        "write": ({"demos"}, {"demos"}),
        "resample": ({"instruction"}, {"instruction"}),
    }

    def write_round(self, round: int) -> list[Written]:
        best = [(k, r) for k, r in self.ranked() if r.instruction][: self.config.resample_top]
        written: list[Written] = []
        for call in range(self.config.writes_per_round):
            if round == 1 or not best:
                shown, inputs = self.shown(self.demos(call))
                meta = fill(self.meta["write"], demos=shown)
                written += self.propose_from("write", meta, inputs, call, operator="ape")
            else:
                key, parent = best[call % len(best)]
                meta = fill(self.meta["resample"], instruction=parent.instruction)
                written += self.propose_from(
                    "resample", meta, [parent.instruction], call,
                    operator="ape-resample", parents=(key,), template=parent.template,
                )  # fmt: skip
        return written
