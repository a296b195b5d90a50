"""Reflect (ProTeGi, Pryzant et al. 2023; GEPA, Agrawal et al. 2025): read the mistakes, say
what went wrong in words, rewrite the instruction to fix it.

Each child of a round:

1. its parent is drawn from the Pareto pool over per-example wins on the search split
   (:mod:`.pareto`; the writer reads which search examples a prompt got right, never their
   texts);
2. the parent is scored on a seeded minibatch of the training examples the writer may read (the
   campaign's model, counted in the writer's own usage, not the search budget);
3. the proposer reads the examples it got wrong with their gold labels and writes a diagnosis
   (one paragraph), then an instruction that fixes it, which keeps the parent's template;
4. every ``merge_every``-th child instead merges the instructions of the two pool members that
   win the most examples the other loses.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from promptscout.objectives.base import predicted_classes
from promptscout.prompts import Prompt, chat_text
from promptscout.searchers.writers.base import Record, WriterSearcher, Written, input_text
from promptscout.searchers.writers.config import ReflectConfig
from promptscout.searchers.writers.meta_prompts import Sections, fill
from promptscout.searchers.writers.pareto import complementary, draw, front
from promptscout.searchers.written_text import EMPTY
from promptscout.tasks import Example

DIAGNOSIS_CHARS = 400


class ReflectSearcher(WriterSearcher):
    """Instructions rewritten from a diagnosis of their mistakes on training examples."""

    type_name = "reflect"
    config_class = ReflectConfig
    config: ReflectConfig
    sections: ClassVar[Sections] = {
        "diagnose": ({"instruction", "errors"}, {"errors"}),
        "rewrite": ({"instruction", "errors", "diagnosis"}, {"diagnosis"}),
        "merge": ({"first", "second"}, {"first", "second"}),
    }

    def write_round(self, round: int) -> list[Written]:
        wins = {key: set(record.wins) for key, record in self.ranked()}
        pool = front(wins) or dict.fromkeys([k for k, _ in self.ranked()[:1]], 1)
        if not pool:
            return []
        written: list[Written] = []
        for child in range(self.config.writes_per_round):
            merging = self.config.merge_every and (child + 1) % self.config.merge_every == 0
            pair = complementary(wins, pool) if merging else None
            if pair is not None:
                written += self._merge(pair, child)
            else:
                written += self._reflect(draw(pool, self.rng(child, 1)), child)
        return written

    def _reflect(self, key: str, child: int) -> list[Written]:
        parent = self.records[key]
        errors = self._errors(parent, child)
        if not errors:
            return []  # nothing to learn from on this minibatch
        shown = "\n\n".join(errors)
        instruction = parent.instruction or "(no instruction)"
        meta = fill(self.meta["diagnose"], instruction=instruction, errors=shown)
        answers = self.writer.write(meta, 1, self.seed(child, 2))
        diagnosis = " ".join((answers[0] if answers else "").split())[:DIAGNOSIS_CHARS]
        if not diagnosis:
            self.guard.dropped[EMPTY] += 1
            return []
        meta = fill(
            self.meta["rewrite"], instruction=instruction, errors=shown, diagnosis=diagnosis
        )
        return self.propose_from(
            "rewrite", meta, [parent.instruction], child, 3,
            operator="reflect", parents=(key,), feedback=diagnosis, template=parent.template,
        )  # fmt: skip

    def _merge(self, pair: tuple[str, str], child: int) -> list[Written]:
        first, second = (self.records[k] for k in pair)
        meta = fill(
            self.meta["merge"],
            first=first.instruction or "(no instruction)",
            second=second.instruction or "(no instruction)",
        )
        return self.propose_from(
            "merge", meta, [first.instruction, second.instruction], child, 4,
            operator="merge", parents=pair, template=first.template,
        )  # fmt: skip

    def _errors(self, parent: Record, child: int) -> list[str]:
        """The parent's mistakes on a seeded minibatch of readable training examples, as the
        proposer reads them (at most ``errors_shown``)."""
        k = min(self.config.minibatch, len(self.read))
        batch = [self.read[i] for i in sorted(self.rng(child, 5).choice(len(self.read), k, False))]
        predicted = self._predict(parent, batch)
        words = self.context.label_words
        wrong = [(e, p) for e, p in zip(batch, predicted, strict=True) if p != e.label]
        return [
            f"Input: {input_text(e)}\nCorrect output: {words[int(e.label)]}\n"
            f"The assistant answered: {words[p] if p >= 0 else '(no answer)'}"
            for e, p in wrong[: self.config.errors_shown]
        ]

    def _predict(self, parent: Record, batch: list[Example]) -> np.ndarray:
        """The parent's predicted class per example, by the campaign's model."""
        model = self.context.model()
        prompt = Prompt(parent.template, self.context.label_words, parent.instruction)
        texts = [chat_text(prompt.messages(e)) if model.chat else prompt.render(e) for e in batch]
        before, started = model.tokens_forwarded, time.perf_counter()
        scores = model.score_labels(texts, self.context.label_words)
        self.writer.count_scoring(
            len(batch), model.tokens_forwarded - before, time.perf_counter() - started
        )
        return predicted_classes(scores)
