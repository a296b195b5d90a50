"""Prompts: what a searcher proposes and an evaluator scores.

A :class:`Prompt` is plain, frozen, hashable data with a JSON round trip. Rendering fills
``{field}`` placeholders by a small tokenizer of the template, never by :meth:`str.format`: a
field value is inserted verbatim and never re-read as a template, and a placeholder can only
name a field, so ``{text.__class__}`` or ``{text[0]}`` are plain text, not attribute or item access.

Rendered layout (blocks joined by ``separator``)::

    instruction
    demo 1 (template filled with the demo's fields, then its label word)
    ...
    the template filled with the example's fields

Trigger slots ``[T]`` in the template are filled, in order, with ``triggers``. The label slot
``[P]`` marks where a masked LM predicts the label word; causal LMs predict it after the text, so
a trailing ``[P]`` is simply dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptscout.errors import PromptscoutError

if TYPE_CHECKING:
    from promptscout.tasks import Example, Task

TRIGGER = "[T]"
LABEL_SLOT = "[P]"
# Readouts of the label words' scores (see promptscout.evaluation.readout).
CALIBRATIONS = ("contextual", "domain", "batch")
VERBALIZERS = ("linear",)

# One alternation, scanned left to right: escaped braces, a placeholder, a trigger slot, or a lone
# brace. Scanning once means nothing inserted (a field value, a trigger) is ever scanned again.
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\[T\]|\{|\}")


def continuation(text: str, word: str) -> str:
    """The text a label word adds after ``text``: ``" " + word`` unless a space is already there
    (the one spacing rule, for rendering demos and for scoring label words alike).

    Byte-level BPE tokenizers spell a word differently at the start of a line and after a space;
    labels read naturally as the next word, as in running prose, so they get a leading space
    unless the text already ends in whitespace (``"Sentiment:\\n"``) or the word brings its own
    leading whitespace. An empty text counts as not ending in whitespace (the word is scored as
    mid-sentence); an empty word stays empty.

    Args:
        text: the rendered prompt.
        word: the label word.

    Returns:
        ``" " + word`` or ``word``.

    Example:
        >>> continuation("Sentiment:", "positive")
        ' positive'
        >>> continuation("Sentiment:\\n", "positive")
        'positive'
        >>> continuation("", "positive")
        ' positive'
    """
    if word and not word[0].isspace() and not text[-1:].isspace():
        return " " + word
    return word


CHAT_MARKER = "\x1echat\x1e"
"""Starts the text of a chat-rendered prompt: the marker, then its messages as JSON."""


def chat_text(messages: Sequence[Mapping[str, str]]) -> str:
    """A chat prompt's messages (``{"role", "content"}`` dicts) as one text: what evaluators,
    the score cache and models pass around; chat models read it back with :func:`chat_messages`."""
    return CHAT_MARKER + json.dumps([dict(m) for m in messages], ensure_ascii=False)


def chat_messages(text: str) -> list[dict[str, str]] | None:
    """The messages of a :func:`chat_text`, or None for a plain text."""
    if not text.startswith(CHAT_MARKER):
        return None
    return [dict(m) for m in json.loads(text[len(CHAT_MARKER) :])]


def template_fields(template: str) -> tuple[str, ...]:
    """The field names a template's placeholders refer to, in order of first use."""
    names: list[str] = []
    for match in _TEMPLATE_TOKEN.finditer(template):
        name = match.group(1)
        if name and name not in names:
            names.append(name)
    return tuple(names)


def fill_template(template: str, fields: Mapping[str, str], triggers: Sequence[str] = ()) -> str:
    """Replace ``{name}`` placeholders with ``fields[name]`` and ``[T]`` slots with ``triggers``.

    ``{{``/``}}`` are literal braces; a lone brace that does not form a placeholder is kept as
    text; ``[T]`` slots beyond ``triggers`` are kept as text. Values are inserted verbatim.
    """
    out: list[str] = []
    pos = 0
    next_trigger = iter(triggers)
    for match in _TEMPLATE_TOKEN.finditer(template):
        out.append(template[pos : match.start()])
        token = match.group(0)
        name = match.group(1)
        if name is not None:
            if name not in fields:
                known = ", ".join(f"{{{k}}}" for k in fields) or "none"
                raise PromptscoutError(
                    f"template field {{{name}}} is not an input field of this task "
                    f"(fields: {known})"
                )
            out.append(str(fields[name]))
        elif token == TRIGGER:
            out.append(next(next_trigger, TRIGGER))
        elif token in ("{{", "}}"):
            out.append(token[0])
        else:
            out.append(token)
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


@dataclass(frozen=True)
class Prompt:
    """A candidate prompt.

    Attributes:
        template: Text with ``{field}`` placeholders (at least one), optional ``[T]`` trigger
            slots and an optional ``[P]`` label slot.
        label_words: One verbalizer per class, in label order (empty for generation tasks).
        instruction: Text placed before everything else.
        demos: Ids of training examples shown as demonstrations, in order.
        triggers: The texts that fill the ``[T]`` slots, one per slot.
        separator: Joins instruction, demonstrations and the query.
        metadata: Searcher notes (not part of the prompt's identity).
        soft: Digest of the soft-prompt tensors (learned vectors placed before the text's
            embeddings, see :mod:`promptscout.soft_tensors`), or "" for a purely discrete
            prompt. The tensors themselves live in the campaign store or beside an export.
        calibration: How the label words' scores are calibrated: "" (not at all), or one of
            :data:`CALIBRATIONS` (see :mod:`promptscout.evaluation.readout`).
        verbalizer: "" (the label words' scores are the class scores) or ``"linear"`` (a head
            on the label words' scores and the hidden state, fitted on the training examples).
        nearest_demos: Show, for each input, this many training examples most like it as
            demonstrations, the most similar last (by the model's own hidden states, see
            :mod:`promptscout.evaluation.neighbours`); 0: the fixed ``demos`` (if any).
    """

    template: str
    label_words: tuple[str, ...] = ()
    instruction: str = ""
    demos: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    separator: str = "\n\n"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Last, so that positional construction up to ``metadata`` keeps working.
    soft: str = ""
    calibration: str = ""
    verbalizer: str = ""
    nearest_demos: int = 0

    def __post_init__(self) -> None:
        # Lists from JSON or configs become tuples so the prompt stays hashable.
        for name in ("label_words", "demos", "triggers"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise PromptscoutError(f"Prompt.{name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(str(v) for v in value))
        if not template_fields(self.template):
            raise PromptscoutError(
                f"template {self.template!r} has no input field placeholder; "
                "add one such as {text}"
            )
        slots = self.template.count(TRIGGER)
        if len(self.triggers) != slots:
            raise PromptscoutError(
                f"template has {slots} {TRIGGER} slot(s) but {len(self.triggers)} "
                "trigger(s) are given"
            )
        if not isinstance(self.soft, str) or not re.fullmatch(r"[0-9a-f]*", self.soft):
            raise PromptscoutError(f"Prompt.soft must be a hex digest or empty, got {self.soft!r}")
        if self.template.count(LABEL_SLOT) > 1:
            raise PromptscoutError(f"template has more than one {LABEL_SLOT} label slot")
        if len(set(self.label_words)) != len(self.label_words):
            raise PromptscoutError(
                f"label words {list(self.label_words)} repeat a word; each class needs its own"
            )
        if any(not w.strip() for w in self.label_words):
            raise PromptscoutError(f"label words {list(self.label_words)} contain an empty word")
        if self.calibration and self.calibration not in CALIBRATIONS:
            raise PromptscoutError(
                f"calibration must be one of {', '.join(CALIBRATIONS)} (or empty), "
                f"got {self.calibration!r}"
            )
        if self.verbalizer and self.verbalizer not in VERBALIZERS:
            raise PromptscoutError(
                f"verbalizer must be one of {', '.join(VERBALIZERS)} (or empty), "
                f"got {self.verbalizer!r}"
            )
        if self.calibration and self.verbalizer:
            raise PromptscoutError(
                "a linear verbalizer learns its own class bias: leave calibration empty"
            )
        if self.soft and self.verbalizer:
            raise PromptscoutError("a linear verbalizer reads discrete prompts only, not soft ones")
        if isinstance(self.nearest_demos, bool) or not isinstance(self.nearest_demos, int):
            raise PromptscoutError(
                f"Prompt.nearest_demos must be a whole number, got {self.nearest_demos!r}"
            )
        if self.nearest_demos < 0:
            raise PromptscoutError(f"nearest_demos must be 0 or more, got {self.nearest_demos}")
        if self.nearest_demos and self.demos:
            raise PromptscoutError(
                "a prompt shows fixed demos or its nearest training examples, not both: "
                "leave demos empty or nearest_demos at 0"
            )

    @property
    def fields(self) -> tuple[str, ...]:
        """Input fields the template uses."""
        return template_fields(self.template)

    @property
    def key(self) -> str:
        """A stable content hash (16 hex digits) of everything that changes what the model sees."""
        payload = json.dumps(self._identity(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def _identity(self) -> dict[str, Any]:
        identity = {
            "template": self.template,
            "label_words": list(self.label_words),
            "instruction": self.instruction,
            "demos": list(self.demos),
            "triggers": list(self.triggers),
            "separator": self.separator,
        }
        # Absent when empty, so prompts without them keep the keys they always had.
        for name in ("soft", "calibration", "verbalizer", "nearest_demos"):
            if getattr(self, name):
                identity[name] = getattr(self, name)
        return identity

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` reads it back."""
        data = self._identity()
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prompt:
        """Build a prompt from :meth:`to_dict` output; unknown keys are an error."""
        known = {"template", "label_words", "instruction", "demos", "triggers", "separator"}
        known |= {"soft", "calibration", "verbalizer", "nearest_demos"}
        unknown = sorted(set(data) - known - {"metadata"})
        if unknown:
            raise PromptscoutError(f"unknown prompt key(s) {unknown}; known: {sorted(known)}")
        if "template" not in data:
            raise PromptscoutError("a prompt needs a 'template'")
        kwargs = {k: data[k] for k in known if k in data}
        return cls(**kwargs, metadata=dict(data.get("metadata") or {}))

    def check_task(self, task: Task) -> None:
        """Raise a one-line error if this prompt cannot be used on ``task``."""
        unknown = [f for f in self.fields if f not in task.input_fields]
        if unknown:
            fields = ", ".join(f"{{{f}}}" for f in task.input_fields)
            raise PromptscoutError(
                f"template field {{{unknown[0]}}} is not an input field of task "
                f"'{task.name}' (fields: {fields})"
            )
        if task.kind != "classification" and (self.calibration or self.verbalizer):
            raise PromptscoutError(
                f"calibration and verbalizers read class scores; task '{task.name}' is {task.kind}"
            )
        if task.kind == "classification" and len(self.label_words) != task.num_classes:
            raise PromptscoutError(
                f"prompt has {len(self.label_words)} label word(s) but task '{task.name}' has "
                f"{task.num_classes} classes {list(task.classes)}; give one word per class"
            )

    def render(self, example: Example, demos: Sequence[Example] = ()) -> str:
        """The text the model reads for ``example``, given the examples ``demos`` names."""
        blocks = [self.instruction] if self.instruction else []
        blocks.extend(self._with_answer(self._fill(d.fields), d.label) for d in demos)
        blocks.append(self._fill(example.fields))
        return self.separator.join(blocks)

    def messages(self, example: Example, demos: Sequence[Example] = ()) -> list[dict[str, str]]:
        """The prompt as chat messages: the instruction as the system message, each
        demonstration as a user turn (the template filled with it) answered by an assistant
        turn (its label word), then the example as the last user turn. The label word is
        scored as the start of the assistant's reply."""
        messages = [{"role": "system", "content": self.instruction}] if self.instruction else []
        for demo in demos:
            word = self.label_words[demo.label] if isinstance(demo.label, int) else demo.label
            messages += [
                {"role": "user", "content": self._fill(demo.fields)},
                {"role": "assistant", "content": str(word)},
            ]
        messages.append({"role": "user", "content": self._fill(example.fields)})
        return messages

    def render_frame(self) -> str:
        """The prompt with every input field empty and no demos: its own fixed text."""
        blank = {name: "" for name in self.fields}
        text = self._fill(blank)
        return self.separator.join([self.instruction, text]) if self.instruction else text

    def _fill(self, fields: Mapping[str, str]) -> str:
        text = fill_template(self.template, fields, self.triggers)
        if self.template.endswith(LABEL_SLOT):
            text = text[: -len(LABEL_SLOT)]
        return text

    def _with_answer(self, text: str, label: int | str) -> str:
        word = self.label_words[label] if isinstance(label, int) else label
        if LABEL_SLOT in self.template:  # an inner slot (masked LMs): the answer goes there
            return text.replace(LABEL_SLOT, word, 1)
        return text + continuation(text, word)
