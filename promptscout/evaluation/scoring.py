"""The steps every evaluator shares around the model call: rendering a prompt's texts (its
examples, then what its readout needs) and turning raw outputs into an evaluation (readout,
then objectives on all of a prompt's outputs at once, so evaluators agree however they split
the work)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptscout.adapter_committee import Member
from promptscout.errors import PromptscoutError
from promptscout.evaluation import readout
from promptscout.evaluation.base import Evaluation
from promptscout.evaluation.neighbours import Neighbours
from promptscout.objectives import Objective, ObjectiveInput
from promptscout.prompts import Prompt, chat_text
from promptscout.soft_tensors import SoftResolver, check_tensors
from promptscout.tasks import Example, Task


@dataclass(frozen=True)
class Rendered:
    """A prompt's texts: one per evaluated example, then one per readout reference.

    Attributes:
        prompt: The prompt.
        texts: What the model reads.
        examples: The examples the texts render, references last.
        evaluated: How many of them are the evaluated examples.
    """

    prompt: Prompt
    texts: list[str]
    examples: tuple[Example, ...]
    evaluated: int


def render_texts(
    task: Task,
    prompt: Prompt,
    examples: Sequence[Example],
    chat: bool = False,
    neighbours: Neighbours | None = None,
) -> list[str]:
    """The texts the model reads for ``prompt`` on ``examples`` (demos looked up in ``task``);
    with ``chat``, each is the prompt's chat messages (:meth:`Prompt.messages`) as one text.

    Args:
        neighbours: Finds each example's nearest training examples, for a prompt with
            ``nearest_demos`` (the evaluator's, over its model's hidden states).

    Raises:
        PromptscoutError: the prompt does not fit the task, or needs neighbours that are not
            given.
        KeyError: a demo id or template field is missing.
    """
    prompt.check_task(task)
    if prompt.nearest_demos:
        if neighbours is None:
            raise PromptscoutError(
                "nearest-neighbour demonstrations are chosen by the model's hidden states: "
                "score this prompt with the local evaluator and an in-process model"
            )
        per_example = neighbours.demos(examples, prompt.nearest_demos)
    else:
        demos = [task.example(i) for i in prompt.demos]
        per_example = [demos] * len(examples)
    pairs = zip(examples, per_example, strict=True)
    if chat:
        return [chat_text(prompt.messages(e, d)) for e, d in pairs]
    return [prompt.render(e, d) for e, d in pairs]


def committee_texts(
    task: Task,
    prompt: Prompt,
    members: Sequence[Member],
    examples: Sequence[Example],
    chat: bool = False,
    neighbours: Neighbours | None = None,
) -> list[list[str]]:
    """The texts of each member of a committee of adapters (see
    :mod:`promptscout.adapter_committee`): ``prompt`` on ``examples``, shown with the member's own
    demonstrations, in the member's own template where it has one (raises as
    :func:`render_texts`)."""
    return [
        render_texts(
            task,
            dataclasses.replace(prompt, demos=m.demos, template=m.template or prompt.template),
            examples,
            chat,
            neighbours,
        )
        for m in members
    ]


def render_prompts(
    task: Task,
    prompts: Sequence[Prompt],
    split: str,
    examples: Sequence[Example],
    check: Callable[[Prompt], object] | None = None,
    references: bool = True,
    chat: bool = False,
    neighbours: Neighbours | None = None,
) -> tuple[list[Rendered], list[Evaluation]]:
    """Each prompt's texts, and a failed evaluation (in prompt order) for each prompt that cannot
    be rendered on ``examples`` or that ``check`` refuses with a :class:`PromptscoutError`: it
    fails alone, before any model call.

    Args:
        chat: Render chat messages (a chat model; see :func:`render_texts`).
        references: Append the examples the prompt's readout needs
            (:func:`~promptscout.evaluation.readout.reference_examples`); off where the caller
            sends examples that already hold them (a Ray work unit).
        neighbours: For prompts with nearest-neighbour demonstrations (see
            :func:`render_texts`); without, such a prompt fails alone.
    """
    ids = tuple(e.id for e in examples)
    rendered: list[Rendered] = []
    failed: list[Evaluation] = []
    for prompt in prompts:
        extra = readout.reference_examples(task, prompt) if references else ()
        every = (*examples, *extra)
        try:
            texts = render_texts(task, prompt, every, chat, neighbours)
        except (PromptscoutError, KeyError) as exc:
            failed.append(Evaluation(prompt.key, split, ids, error=f"cannot render: {exc}"))
            continue
        try:
            if check is not None:
                check(prompt)
        except PromptscoutError as exc:
            failed.append(Evaluation(prompt.key, split, ids, error=str(exc)))
            continue
        rendered.append(Rendered(prompt, texts, every, len(examples)))
    return rendered, failed


def resolve_soft(task: Task, resolver: SoftResolver | None, digest: str) -> dict[str, np.ndarray]:
    """A soft prompt's validated tensors; a prompt whose tensors cannot be found fails alone
    (before any model call), like one that cannot render.

    Raises:
        PromptscoutError: not a classification task, or the tensors are not available.
    """
    if task.kind != "classification":
        raise PromptscoutError("soft prompts score classification tasks only")
    tensors = resolver(digest) if resolver else None
    if tensors is None:
        raise PromptscoutError(
            f"soft prompt {digest}: its tensors are not available to this evaluator "
            "(not in the campaign store, or the export's .soft.safetensors file is missing)"
        )
    return check_tensors(tensors)


def objective_values(
    task: Task,
    objectives: Sequence[Objective],
    prompt: Prompt,
    examples: Sequence[Example],
    outputs: object,
    prompt_tokens: int,
) -> tuple[dict[str, float], str | None]:
    """Objective values of a prompt's outputs on ``examples``, and an error or None.

    Every evaluator computes objectives here, on all of a prompt's outputs at once, so they
    agree however the scoring was split up.
    """
    try:
        data = ObjectiveInput(task, examples, outputs, prompt, prompt_tokens)
        return {o.name: o(data) for o in objectives}, None
    except Exception as exc:  # a faulty plug-in objective fails this candidate only
        return {}, f"objective error: {exc}"


def finish_evaluation(
    task: Task,
    objectives: Sequence[Objective],
    prompt: Prompt,
    split: str,
    examples: Sequence[Example],
    raw: Sequence[Any],
    *,
    prompt_tokens: int,
    examples_read: int,
    tokens: int,
    seconds: float,
    completion_tokens: int = 0,
) -> Evaluation:
    """The evaluation of ``prompt`` on ``examples`` from its raw outputs (one row per example,
    then one per readout reference): the readout gives the class scores, then the objectives."""
    ids = tuple(e.id for e in examples)
    outputs: Any
    if task.kind == "generation":
        outputs = list(raw)[: len(examples)]
        plain = outputs
    else:
        outputs = readout.apply(task, prompt, np.asarray(raw, dtype=np.float64), examples)
        plain = outputs.tolist()
    values, error = objective_values(task, objectives, prompt, examples, outputs, prompt_tokens)
    return Evaluation(
        prompt.key,
        split,
        ids,
        plain,
        values,
        examples_read,
        tokens,
        seconds,
        error,
        prompt_tokens,
        completion_tokens,
    )
