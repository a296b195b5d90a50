"""The smallest searcher: one-word cue search, as a plug-in outside the package.

Written from the README ("Searchers: each a config dataclass, a module and one registration
line") and the contract in :class:`promptscout.searchers.base.Searcher`: a config dataclass whose
options are declared with :func:`~promptscout.options.option` (type, default, help line); a
``Searcher`` subclass with ``type_name`` and ``config_class`` that implements ``ask`` (up to
``n`` new prompts), ``tell`` (one :class:`~promptscout.evaluation.outcome.Outcome` per asked
prompt, racing status included), ``save`` and ``restore`` (JSON-ready state, so a killed
campaign resumes exactly) and ``exhausted``. Nothing else in promptscout changes: the one
registration line, ``register_searcher(CueSearcher)``, is the user's (see
tests/test_example_searcher.py), or an entry point in the ``promptscout.searchers`` group.

It tries each word of ``words`` as the answer cue after the text (``"{text} Overall:"``), in
order, and keeps the best by outcome (:class:`~promptscout.searchers.base.BestSoFar`: scored on
more examples first, then by score, so racing-stopped prompts do not win on a lucky minibatch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptscout.evaluation.outcome import Outcome
from promptscout.options import option
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, Searcher, SearcherConfig
from promptscout.searchers.base import BestSoFar


@dataclass
class CueConfig(SearcherConfig):
    words: list[str] = option(
        ["Overall:", "Verdict:", "In short, it was", "Rating:"], help="Cues tried after the text."
    )


class CueSearcher(Searcher):
    type_name = "cue"
    config_class = CueConfig

    def __init__(self, config: CueConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        self.asked = 0  # words proposed so far
        self.best = BestSoFar()

    def ask(self, n: int) -> list[Prompt]:
        words = self.config.words[self.asked : self.asked + n]
        self.asked += len(words)
        return [Prompt("{text} " + word, self.context.label_words) for word in words]

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self.best.update(outcome)

    @property
    def exhausted(self) -> bool:
        return self.asked >= len(self.config.words)

    def save(self) -> dict[str, Any]:
        return {"asked": self.asked, "best": self.best.record}

    def restore(self, state: dict[str, Any]) -> None:
        self.asked, self.best = state["asked"], BestSoFar(state["best"])
