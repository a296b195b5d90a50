"""In-process evaluation: every prompt's examples go through one model, in large batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator, ProgressCallback
from promptscout.evaluation.cache import ScoreCache, generation_variant, label_variant
from promptscout.model import LanguageModel
from promptscout.objectives import Objective, ObjectiveInput
from promptscout.prompts import Prompt
from promptscout.soft_tensors import PREFIX, SoftResolver, check_tensors
from promptscout.tasks import Example, Task


class LocalEvaluator(Evaluator):
    """Scores prompts with a model in this process.

    Prompts that share label words are scored in one call to the model, so its length-sorted
    batching sees the texts of several prompts at once and pads little.

    Args:
        model: The language model.
        task: The task whose examples are scored.
        objectives: Objectives computed for every evaluation.
        texts_per_call: Upper bound on texts sent to the model at once (several prompts' worth);
            each finished call yields its prompts' evaluations.
        max_new_tokens: Generation length for generation tasks.
        cache: Where computed outputs are kept and looked up; :attr:`Evaluation.examples`
            counts only the examples the model actually read.
        soft_resolver: Digest -> tensors of soft prompts (:mod:`promptscout.soft`), e.g. the
            campaign store's :meth:`~promptscout.store.Store.get_soft`; a soft prompt it cannot
            resolve (or without one) fails with an error.
    """

    def __init__(
        self,
        model: LanguageModel,
        task: Task,
        objectives: Sequence[Objective],
        texts_per_call: int = 128,
        max_new_tokens: int = 32,
        cache: ScoreCache | None = None,
        soft_resolver: SoftResolver | None = None,
    ) -> None:
        self.model = model
        self.soft_resolver = soft_resolver
        self._soft: dict[str, dict[str, np.ndarray]] = {}
        self.cache = cache
        self.task = task
        self.objectives = [o for o in objectives if task.kind in o.task_kinds]
        self.texts_per_call = texts_per_call
        self.max_new_tokens = max_new_tokens
        self._frame_tokens: dict[str, int] = {}

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    def iter_evaluate(
        self,
        prompts: Sequence[Prompt],
        split: str,
        example_ids: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Iterator[Evaluation]:
        examples = self.task.examples(split, example_ids)
        # A soft prompt whose tensors cannot be found fails alone, like one that cannot render.
        rendered, failed = render_prompts(
            self.task, prompts, split, examples, check=lambda p: p.soft and self._soft_tensors(p)
        )
        yield from failed
        for chunk in self._chunks(rendered, len(examples)):
            yield from self._score_chunk(chunk, split, examples, progress)

    def _chunks(
        self, rendered: list[tuple[Prompt, list[str]]], n_examples: int
    ) -> Iterator[list[tuple[Prompt, list[str]]]]:
        """Group prompts with equal label words (and soft tensors), at most ``texts_per_call``
        texts a group."""
        per_call = max(1, self.texts_per_call // max(n_examples, 1))
        groups: dict[tuple[tuple[str, ...], str], list[tuple[Prompt, list[str]]]] = {}
        for item in rendered:
            groups.setdefault((item[0].label_words, item[0].soft), []).append(item)
        for group in groups.values():
            for start in range(0, len(group), per_call):
                yield group[start : start + per_call]

    def _score_chunk(
        self,
        chunk: list[tuple[Prompt, list[str]]],
        split: str,
        examples: Sequence[Example],
        progress: ProgressCallback | None,
    ) -> Iterator[Evaluation]:
        ids = tuple(e.id for e in examples)
        started, tokens_before = time.perf_counter(), self.model.tokens_forwarded
        try:
            outputs, scored = self._model_outputs(chunk, progress)
        except Exception as exc:
            if len(chunk) > 1:  # find which prompt failed; the others still get scored
                for item in chunk:
                    yield from self._score_chunk([item], split, examples, progress)
                return
            yield Evaluation(chunk[0][0].key, split, ids, error=f"model error: {exc}")
            return
        # Time and tokens are shared by the prompts of a chunk in proportion to what each scored.
        share = [s / max(sum(scored), 1) for s in scored]
        seconds = time.perf_counter() - started
        tokens = self.model.tokens_forwarded - tokens_before
        for (prompt, _), out, n_scored, part in zip(chunk, outputs, scored, share, strict=True):
            values, error = objective_values(
                self.task, self.objectives, prompt, examples, out, self.prompt_tokens(prompt)
            )
            plain = out.tolist() if isinstance(out, np.ndarray) else list(out)
            yield Evaluation(
                prompt.key,
                split,
                ids,
                plain,
                values,
                n_scored,
                round(tokens * part),
                seconds * part,
                error,
                self.prompt_tokens(prompt),
            )

    def _model_outputs(
        self, chunk: list[tuple[Prompt, list[str]]], progress: ProgressCallback | None
    ) -> tuple[list, list[int]]:
        """Outputs per prompt of the chunk and how many texts of each the model really read.

        Cached texts are taken from the cache; the rest are computed in slices of
        ``texts_per_call`` texts (progress is reported after each slice) and cached.
        """
        texts = [t for _, prompt_texts in chunk for t in prompt_texts]
        generation = self.task.kind == "generation"
        variant = (
            generation_variant(self.max_new_tokens)
            if generation
            else label_variant(chunk[0][0].label_words, chunk[0][0].soft)
        )
        outputs: list = (
            self.cache.get(self.fingerprint, variant, texts) if self.cache else [None] * len(texts)
        )
        missing = [i for i, out in enumerate(outputs) if out is None]
        if progress is not None and len(missing) < len(texts):
            progress(len(texts) - len(missing))
        for start in range(0, len(missing), self.texts_per_call):
            positions = missing[start : start + self.texts_per_call]
            piece = [texts[i] for i in positions]
            if generation:
                computed = self.model.generate(piece, self.max_new_tokens)
            elif chunk[0][0].soft:
                soft = self._soft_tensors(chunk[0][0])
                computed = list(self.model.score_labels_soft(piece, chunk[0][0].label_words, soft))
            else:
                computed = list(self.model.score_labels(piece, chunk[0][0].label_words))
            if self.cache is not None:
                self.cache.put(self.fingerprint, variant, piece, computed)
            for i, out in zip(positions, computed, strict=True):
                outputs[i] = out
            if progress is not None:
                progress(len(piece))
        n = len(chunk[0][1])
        per_prompt = [outputs[i * n : (i + 1) * n] for i in range(len(chunk))]
        if not generation:
            per_prompt = [np.array(rows) for rows in per_prompt]
        scored = np.bincount(np.array(missing, dtype=np.int64) // n, minlength=len(chunk))
        return per_prompt, [int(c) for c in scored]

    def prompt_tokens(self, prompt: Prompt) -> int:
        """Tokens of the prompt's own text: instruction, template and demos with empty inputs."""
        if prompt.key not in self._frame_tokens:
            blank = Example("frame", {f: "" for f in self.task.input_fields}, 0)
            demos = [self.task.example(i) for i in prompt.demos]
            frame = self.model.count_tokens(prompt.render(blank, demos))
            if prompt.soft:  # each soft vector takes a token's place
                frame += len(self._soft_tensors(prompt)[PREFIX])
            self._frame_tokens[prompt.key] = frame
        return self._frame_tokens[prompt.key]

    def _soft_tensors(self, prompt: Prompt) -> dict[str, np.ndarray]:
        """The soft prompt's tensors, resolved once per digest."""
        if prompt.soft not in self._soft:
            if self.task.kind != "classification":
                raise PromptscoutError("soft prompts score classification tasks only")
            tensors = self.soft_resolver(prompt.soft) if self.soft_resolver else None
            if tensors is None:
                raise PromptscoutError(
                    f"soft prompt {prompt.soft}: its tensors are not available to this evaluator "
                    "(not in the campaign store, or the export's .soft.safetensors file is missing)"
                )
            if len(self._soft) > 64:  # one searcher proposes a new digest per epoch
                self._soft.clear()
            self._soft[prompt.soft] = check_tensors(tensors)
        return self._soft[prompt.soft]


def render_texts(task: Task, prompt: Prompt, examples: Sequence[Example]) -> list[str]:
    """The texts the model reads for ``prompt`` on ``examples`` (demos looked up in ``task``).

    Raises:
        PromptscoutError: the prompt does not fit the task.
        KeyError: a demo id or template field is missing.
    """
    prompt.check_task(task)
    demos = [task.example(i) for i in prompt.demos]
    return [prompt.render(e, demos) for e in examples]


def render_prompts(
    task: Task,
    prompts: Sequence[Prompt],
    split: str,
    examples: Sequence[Example],
    check: Callable[[Prompt], object] | None = None,
) -> tuple[list[tuple[Prompt, list[str]]], list[Evaluation]]:
    """Each prompt with its rendered texts, and a failed evaluation (in prompt order) for each
    prompt that cannot be rendered on ``examples`` or that ``check`` refuses with a
    :class:`PromptscoutError`: it fails alone, before any model call."""
    ids = tuple(e.id for e in examples)
    rendered: list[tuple[Prompt, list[str]]] = []
    failed: list[Evaluation] = []
    for prompt in prompts:
        try:
            texts = render_texts(task, prompt, examples)
        except (PromptscoutError, KeyError) as exc:
            failed.append(Evaluation(prompt.key, split, ids, error=f"cannot render: {exc}"))
            continue
        try:
            if check is not None:
                check(prompt)
        except PromptscoutError as exc:
            failed.append(Evaluation(prompt.key, split, ids, error=str(exc)))
            continue
        rendered.append((prompt, texts))
    return rendered, failed


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
