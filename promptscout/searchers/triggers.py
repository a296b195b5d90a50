"""Trigger-slot templates, shared by the searchers that fill ``[T]`` slots with tokens
(``autoprompt`` and ``rl``).

:class:`TriggerTemplate` is the checked template such a searcher fills on a task: it renders the
template with each slot's text and reports where each slot landed in the rendered prompt (the
character spans the gradient code locates triggers by).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from promptscout.errors import PromptscoutError
from promptscout.prompts import LABEL_SLOT, TRIGGER, Prompt, fill_template
from promptscout.searchers.parts import compose_template

if TYPE_CHECKING:
    from promptscout.tasks import Task


class TriggerTemplate:
    """A template split at its ``[T]`` slots, rendered with each trigger's character span.

    A slot's text is its token's own text, less one leading space when the slot already follows
    whitespace (``"{text} [T]"``): byte-level tokenizers attach that space to the word, so
    ``"... great"`` reads the token `` great`` where ``"...  great"`` would read a lone space
    first.

    Args:
        template: the template (with at least one ``[T]``).
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self.pieces = template.split(TRIGGER)
        self.slots = len(self.pieces) - 1
        if self.slots < 1:
            raise PromptscoutError(f"autoprompt: template {template!r} has no [T] slot")

    @classmethod
    def for_task(
        cls, template: str, slots: int, task: Task, label_words: Sequence[str], searcher: str
    ) -> TriggerTemplate:
        """The trigger template a white-box searcher fills on ``task``: ``template``, or the
        task's input fields followed by ``slots`` trigger slots when it is empty.

        Raises:
            PromptscoutError: the task is not a classification task with train examples (the
                searcher learns from train labels), or the template does not fit it.
        """
        if task.kind != "classification":
            raise PromptscoutError(
                f"{searcher} searches label-word prompts; task '{task.name}' is {task.kind}"
            )
        if not task.train:
            raise PromptscoutError(f"{searcher} needs train examples; task '{task.name}' has none")
        fields = {name: "" for name in task.input_fields}
        text = template or compose_template(fields, TRIGGER * slots, " ")
        made = cls(text)
        Prompt(text, tuple(label_words), triggers=("x",) * made.slots).check_task(task)
        return made

    def slot_texts(self, token_texts: Sequence[str]) -> tuple[str, ...]:
        """The text that fills each slot, from its token's own text."""
        out: list[str] = []
        for j, raw in enumerate(token_texts):
            before = self.pieces[j] or (out[-1] if out else "")
            out.append(raw[1:] if before[-1:].isspace() and raw.startswith(" ") else raw)
        return tuple(out)

    def render(
        self, fields: Mapping[str, str], texts: Sequence[str]
    ) -> tuple[str, list[tuple[int, int]]]:
        """The prompt text for one example (as :meth:`Prompt.render` makes it) and each slot's
        ``(start, end)`` in it."""
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0
        for j, piece in enumerate(self.pieces):
            filled = fill_template(piece, fields)
            if j == self.slots and self.template.endswith(LABEL_SLOT):
                filled = filled[: -len(LABEL_SLOT)]  # causal LMs predict after the text
            parts.append(filled)
            pos += len(filled)
            if j < self.slots:
                spans.append((pos, pos + len(texts[j])))
                parts.append(texts[j])
                pos += len(texts[j])
        return "".join(parts), spans
