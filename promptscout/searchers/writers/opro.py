"""OPRO (Yang et al., 2024): each round the proposer sees the best prompts so far with their
search-split scores, sorted worst to best, and a few training examples, and writes new ones.

The history holds the ``history`` best distinct instructions (or templates, with ``target =
"template"``) this writer has seen scored on the whole search split; when the meta-prompt would
not fit in the proposer's context with an answer, the weakest entries are dropped first, then
examples. A proposal's parents are the prompts its meta-prompt showed, best first.
"""

from __future__ import annotations

from typing import ClassVar

from promptscout.errors import PromptscoutError
from promptscout.searchers.writers.base import Record, WriterSearcher, Written
from promptscout.searchers.writers.config import OproConfig
from promptscout.searchers.writers.meta_prompts import Sections, fill


class OproSearcher(WriterSearcher):
    """Instructions written from a scored history (optimisation by prompting)."""

    type_name = "opro"
    config_class = OproConfig
    config: OproConfig
    sections: ClassVar[Sections] = {
        "write": ({"history", "demos"}, {"history"}),
        "write_template": ({"history", "demos", "fields"}, {"history"}),
    }

    @property
    def writes_templates(self) -> bool:  # type: ignore[override]
        return self.config.target == "template"

    def write_round(self, round: int) -> list[Written]:
        section = "write_template" if self.writes_templates else "write"
        history = self._history()
        if not history:
            return []
        written: list[Written] = []
        for call in range(self.config.writes_per_round):
            demos = self.demos(call)
            meta, shown = self._meta(section, history, demos)
            parents = tuple(key for key, _ in reversed(shown))
            inputs = self.shown(demos)[1]
            written += self.propose_from(section, meta, inputs, call,
                                         operator="opro", parents=parents)  # fmt: skip
        return written

    def _history(self) -> list[tuple[str, Record]]:
        """The best ``history`` distinct texts, each by its best prompt, worst first."""
        best: dict[str, tuple[str, Record]] = {}
        for key, record in self.ranked():
            text = record.template if self.writes_templates else record.instruction
            best.setdefault(text, (key, record))
        return list(reversed(list(best.values())[: self.config.history]))

    def _meta(self, section, history, demos):
        """The meta-prompt, with the weakest history entries (then examples) dropped until it
        fits the proposer's context; and the history entries it shows."""
        fields = ", ".join(f"{{{f}}}" for f in self.context.task.input_fields)
        while True:
            lines = [f"Text: {self._text(r)}\nScore: {_score(r.score)}" for _, r in history]
            meta = fill(self.meta[section], history="\n\n".join(lines),
                        demos=self.shown(demos)[0], fields=fields)  # fmt: skip
            if self.writer.fits(meta):
                return meta, history
            if len(history) > 1:
                history = history[1:]
            elif demos:
                demos = demos[:-1]
            else:
                raise PromptscoutError(
                    f"opro searcher '{self.name}': its meta-prompt does not fit the proposer's "
                    "context even with one history entry; lower max_new_tokens"
                )

    def _text(self, record: Record) -> str:
        if self.writes_templates:
            return record.template
        return record.instruction or "(no instruction)"


def _score(score: float) -> str:
    """A score as the proposer reads it: accuracy-like scores as a percentage."""
    return f"{round(100 * score)}" if 0 <= score <= 1 else f"{score:.3f}"
