"""What the writers share: the starting pool, rounds of writing, the guardrails, the prompts a
written instruction makes, what each prompt scored, lineage notes and the writers' report.

A writer's round returns :class:`Written` proposals; each admitted one becomes one prompt per
template (a written template: one prompt), stamped with its lineage: ``operator``, ``parents``
(prompt keys), ``feedback`` (the words it was written from, where there are any) and
``train_read`` (the training examples the writer may read: selection validates its prompts on
the others). Everything random is drawn from generators seeded with the searcher's seed, the
round and the call, so a round is the same whenever it is written, resumed or not.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.evaluation.outcome import Outcome, Status
from promptscout.objectives.base import predicted_classes
from promptscout.prompts import Prompt
from promptscout.searchers.base import BestSoFar, SearchContext, Searcher
from promptscout.searchers.parts import compose_template
from promptscout.searchers.writers.config import WriterConfig
from promptscout.searchers.writers.guardrails import Guardrails
from promptscout.searchers.writers.meta_prompts import Sections, load_meta_prompts, wording
from promptscout.searchers.writers.writing import Writer
from promptscout.tasks import Example

FEEDBACK_CHARS = 600  # the most of a feedback text kept in a prompt's notes
EXAMPLE_WORDS = 60  # an example's input is cut to this many words when shown to the proposer


@dataclass(frozen=True)
class Written:
    """One proposal: the text written (an instruction, or a template), what it came from."""

    text: str
    operator: str
    parents: tuple[str, ...] = ()
    feedback: str = ""
    template: str | None = None  # the one template it goes with (None: every template)


@dataclass
class Record:
    """What a writer knows about one of its prompts: how it was made and what it scored."""

    instruction: str
    template: str
    score: float = float("-inf")
    examples: int = 0
    complete: bool = False
    wins: list[str] = field(default_factory=list)


class WriterSearcher(Searcher):
    """A searcher whose prompts a language model writes (see the module docstring).

    Subclasses set :attr:`sections` (their meta-prompt file's sections) and implement
    :meth:`write_round`.
    """

    config: WriterConfig
    sections: ClassVar[Sections]
    writes_templates: ClassVar[bool] = False

    def __init__(self, config: WriterConfig, context: SearchContext) -> None:
        super().__init__(config, context)
        task = context.task
        if task.kind != "classification":
            raise PromptscoutError(
                f"the {self.type_name} searcher writes instructions for classification tasks; "
                f"task '{task.name}' is {task.kind}"
            )
        if context.model_provider is None and context.proposer_provider is None:
            raise PromptscoutError(
                f"the {self.type_name} searcher needs a model to write with; set [proposer] or "
                "run it in a campaign"
            )
        self.meta = load_meta_prompts(self.type_name, config.meta_prompt, self.sections)
        fields = {name: "Input" for name in task.input_fields}
        self.templates = list(config.templates) or [compose_template(fields, "Answer:", "\n")]
        for template in self.templates:
            Prompt(template, context.label_words).check_task(task)
        self.writer = Writer(
            context.proposer, config.max_writes, config.max_new_tokens, config.temperature,
            config.chat,
        )  # fmt: skip
        self.guard = Guardrails(
            task.input_fields, self.writer.count_tokens, config.max_prompt_tokens
        )
        self.read = self._read_pool()
        self.round = 0
        self.queue: list[dict[str, Any]] = []
        self.records: dict[str, Record] = {}
        self.best_so_far = BestSoFar()

    # -- what a writer implements ------------------------------------------------------------

    @abstractmethod
    def write_round(self, round: int) -> list[Written]:
        """The proposals of writing round ``round`` (1, 2, ...), before the guardrails."""

    # -- the searcher contract ---------------------------------------------------------------

    def ask(self, n: int) -> list[Prompt]:
        while not self.queue and not self.exhausted:
            self._next_round()
        asked, self.queue = self.queue[:n], self.queue[n:]
        return [Prompt.from_dict(p) for p in asked]

    def tell(self, outcomes: list[Outcome]) -> None:  # type: ignore[override]
        for outcome in outcomes:
            record = self.records.get(outcome.key)
            if record is None:
                continue
            record.score, record.examples = outcome.score, outcome.examples
            record.complete = outcome.status is Status.COMPLETE
            record.wins = self._wins(outcome) if record.complete else []
            self.best_so_far.update(outcome)

    @property
    def exhausted(self) -> bool:
        return not self.queue and (self.round > self.config.rounds or self.writer.left == 0)

    def save(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "queue": list(self.queue),
            "records": {k: vars(r) for k, r in self.records.items()},
            "writer": self.writer.state(),
            "guard": self.guard.state(),
            "best": self.best_so_far.record,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.round = int(state["round"])
        self.queue = list(state["queue"])
        self.records = {k: Record(**r) for k, r in state["records"].items()}
        self.writer.load_state(state["writer"])
        self.guard.load_state(state["guard"])
        self.best_so_far = BestSoFar(state["best"])

    def notes(self) -> dict[str, Any]:
        """The proposer's usage and the guardrails' counts, for the report."""
        usage = {
            k: round(v, 3) if isinstance(v, float) else v for k, v in self.writer.usage.items()
        }
        proposals = self.guard.kept + sum(self.guard.dropped.values())
        return {"writing": {**usage, "proposals": proposals, "kept": self.guard.kept,
                            "dropped": dict(self.guard.dropped)}}  # fmt: skip

    # -- what writers share ------------------------------------------------------------------

    def rng(self, *salt: int) -> np.random.Generator:
        """A generator for one decision: the searcher's seed, the round and ``salt``."""
        return np.random.default_rng([self.context.seed, self.round, *salt])

    def seed(self, *salt: int) -> int:
        """A sampling seed for one call to the proposer."""
        return int(self.rng(*salt, 7).integers(2**31 - 1))

    def ranked(self) -> list[tuple[str, Record]]:
        """This writer's prompts scored on the whole search split, best first."""
        done = [(k, r) for k, r in self.records.items() if r.complete]
        return sorted(done, key=lambda kr: -kr[1].score)

    def shown(self, examples: list[Example]) -> tuple[str, list[str]]:
        """Training examples as the proposer reads them (input, then output: the label word),
        and their inputs (which a proposal must not merely repeat)."""
        inputs = [input_text(e) for e in examples]
        blocks = [
            f"Input: {text}\nOutput: {self.context.label_words[int(e.label)]}"
            for text, e in zip(inputs, examples, strict=True)
        ]
        return "\n\n".join(blocks), inputs

    def demos(self, *salt: int) -> list[Example]:
        """A seeded sample of ``demos_per_write`` examples the writer may read."""
        k = min(self.config.demos_per_write, len(self.read))
        picked = sorted(self.rng(*salt).choice(len(self.read), size=k, replace=False))
        return [self.read[i] for i in picked]

    def propose_from(
        self,
        section: str,
        meta_prompt: str,
        inputs: list[str],
        *salt: int,
        **lineage: Any,
    ) -> list[Written]:
        """Send ``meta_prompt`` (filled from ``section``) and turn the admitted answers into
        :class:`Written` proposals carrying ``lineage`` (operator, parents, feedback, template)."""
        answers = self.writer.write(meta_prompt, self.config.samples_per_write, self.seed(*salt))
        template = lineage.get("template")
        own = wording(self.meta[section])  # what a proposal must not copy: once per call
        kept = []
        for answer in answers:
            text = self.guard.admit(
                answer,
                wording=own,
                inputs=inputs,
                frame=lambda t: self._frame(t, template),
                template=self.writes_templates,
            )
            if text is not None:
                kept.append(Written(text, **lineage))
        return kept

    # -- rounds and prompts ------------------------------------------------------------------

    def _next_round(self) -> None:
        if self.round == 0:
            written = [Written(i, "start") for i in dict.fromkeys(self.config.instructions)]
            for item in written:
                self.guard.remember(item.text)
        else:
            written = self.write_round(self.round)
        self.round += 1
        for item in written:
            for prompt in self._prompts(item):
                if prompt.key not in self.records:
                    self.records[prompt.key] = Record(prompt.instruction, prompt.template)
                    self.queue.append(prompt.to_dict())

    def _prompts(self, item: Written) -> list[Prompt]:
        notes: dict[str, Any] = {"operator": item.operator, "round": self.round}
        if item.parents:
            notes["parents"] = list(item.parents)
        if item.feedback:
            notes["feedback"] = item.feedback[:FEEDBACK_CHARS]
        notes["train_read"] = [e.id for e in self.read]
        if self.writes_templates and item.operator != "start":
            return [Prompt(item.text, self.context.label_words, metadata=notes)]
        templates = [item.template] if item.template else self.templates
        return [Prompt(t, self.context.label_words, item.text, metadata=notes) for t in templates]

    def _frame(self, text: str, template: str | None) -> str:
        if self.writes_templates:
            return Prompt(text, self.context.label_words).render_frame()
        return Prompt(template or self.templates[0], self.context.label_words, text).render_frame()

    def _read_pool(self) -> list[Example]:
        """The training examples this writer may read: a seeded sample of ``read_examples``,
        at most half of the training split (the rest is left for selection's validation)."""
        train = list(self.context.task.train)
        k = min(self.config.read_examples, len(train) // 2)
        picked = np.random.default_rng([self.context.seed, 11]).choice(len(train), k, replace=False)
        return [train[i] for i in sorted(picked)]

    def _wins(self, outcome: Outcome) -> list[str]:
        """The search examples ``outcome``'s prompt answered right (its per-example scores)."""
        evaluation = outcome.evaluation
        if not evaluation.outputs:
            return []
        gold = {e.id: e.label for e in self.context.task.split(evaluation.split)}
        predicted = predicted_classes(np.asarray(evaluation.outputs, dtype=np.float64))
        return [i for i, p in zip(evaluation.example_ids, predicted, strict=True) if gold[i] == p]


def input_text(example: Example) -> str:
    """An example's input as the proposer reads it (fields joined, cut to ``EXAMPLE_WORDS``)."""
    text = " / ".join(str(v) for v in example.fields.values())
    words = text.split()
    return " ".join(words[:EXAMPLE_WORDS]) + (" ..." if len(words) > EXAMPLE_WORDS else "")
