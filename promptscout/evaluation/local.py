"""In-process evaluation: every prompt's examples go through one model, in large batches."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from promptscout.adapter_committee import committee_members, is_committee
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation, Evaluator, ProgressCallback
from promptscout.evaluation.cache import (
    EMBED_VARIANT,
    ScoreCache,
    committee_variants,
    prompt_variants,
)
from promptscout.evaluation.committee_scoring import pool_committee
from promptscout.evaluation.neighbours import Neighbours
from promptscout.evaluation.readout import needs_hidden
from promptscout.evaluation.scoring import (
    Rendered,
    committee_texts,
    finish_evaluation,
    render_prompts,
    resolve_soft,
)
from promptscout.model import LanguageModel
from promptscout.objectives import Objective
from promptscout.prompts import Prompt
from promptscout.soft_tensors import SoftResolver, added_positions
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
        # Each input's nearest training examples, for prompts with nearest_demos; the texts'
        # embeddings go through the score cache like any output.
        self.neighbours = Neighbours(task, self._embed)

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
        yield from self._evaluate(prompts, split, examples, progress, finish=True)

    def iter_raw(
        self, prompts: Sequence[Prompt], split: str, examples: Sequence[Example]
    ) -> Iterator[Evaluation]:
        """Evaluations holding the raw outputs of exactly ``examples`` (references included by
        the caller), without readout or objectives: a Ray work unit's part."""
        yield from self._evaluate(prompts, split, examples, None, finish=False)

    def _evaluate(
        self,
        prompts: Sequence[Prompt],
        split: str,
        examples: Sequence[Example],
        progress: ProgressCallback | None,
        finish: bool,
    ) -> Iterator[Evaluation]:
        # A soft prompt whose tensors cannot be found fails alone, like one that cannot render.
        chat = getattr(self.model, "chat", False)
        rendered, failed = render_prompts(
            self.task,
            prompts,
            split,
            examples,
            check=lambda p: p.soft and self._soft_tensors(p),
            references=finish,
            chat=chat,
            neighbours=self.neighbours,
        )
        yield from failed
        rendered, failed = self._committee_texts(rendered, split, chat)
        yield from failed
        for chunk in self._chunks(rendered):
            yield from self._score_chunk(chunk, split, progress, finish)

    def _committee_texts(
        self, rendered: list[Rendered], split: str, chat: bool
    ) -> tuple[list[Rendered], list[Evaluation]]:
        """A committee of adapters' texts are its members' texts, one member after another,
        each shown with the member's own demonstrations; one that cannot render fails alone."""
        out, failed = [], []
        for item in rendered:
            prompt = item.prompt
            bundle = self._soft_tensors(prompt) if prompt.soft else None
            if bundle is None or not is_committee(bundle):
                out.append(item)
                continue
            members = committee_members(bundle)
            try:
                each = committee_texts(
                    self.task, prompt, members, item.examples, chat, self.neighbours
                )
            except (PromptscoutError, KeyError) as exc:
                ids = tuple(e.id for e in item.examples[: item.evaluated])
                failed.append(Evaluation(prompt.key, split, ids, error=f"cannot render: {exc}"))
                continue
            out.append(dataclasses.replace(item, texts=[t for texts in each for t in texts]))
        return out, failed

    def _chunks(self, rendered: list[Rendered]) -> Iterator[list[Rendered]]:
        """Group prompts that the model scores alike (label words, soft tensors, readout
        references), at most ``texts_per_call`` texts a group."""
        groups: dict[tuple[Any, ...], list[Rendered]] = {}
        for item in rendered:
            p = item.prompt
            key = (p.label_words, p.soft, needs_hidden(p), tuple(e.id for e in item.examples))
            groups.setdefault(key, []).append(item)
        for group in groups.values():
            per_call = max(1, self.texts_per_call // max(len(group[0].texts), 1))
            for start in range(0, len(group), per_call):
                yield group[start : start + per_call]

    def _score_chunk(
        self,
        chunk: list[Rendered],
        split: str,
        progress: ProgressCallback | None,
        finish: bool,
    ) -> Iterator[Evaluation]:
        started, tokens_before = time.perf_counter(), self.model.tokens_forwarded
        written_before = self.model.completion_tokens
        try:
            outputs, scored = self._model_outputs(chunk, progress)
        except Exception as exc:
            if len(chunk) > 1:  # find which prompt failed; the others still get scored
                for item in chunk:
                    yield from self._score_chunk([item], split, progress, finish)
                return
            item = chunk[0]
            ids = tuple(e.id for e in item.examples[: item.evaluated])
            yield Evaluation(item.prompt.key, split, ids, error=f"model error: {exc}")
            return
        # Time and tokens are shared by the prompts of a chunk in proportion to what each scored.
        share = [s / max(sum(scored), 1) for s in scored]
        seconds = time.perf_counter() - started
        tokens = self.model.tokens_forwarded - tokens_before
        written = self.model.completion_tokens - written_before
        for item, raw, n_scored, part in zip(chunk, outputs, scored, share, strict=True):
            cost = {
                "prompt_tokens": self.prompt_tokens(item.prompt),
                "examples_read": n_scored,
                "tokens": round(tokens * part),
                "seconds": seconds * part,
                "completion_tokens": round(written * part),
            }
            examples = item.examples[: item.evaluated]
            if finish:
                yield finish_evaluation(
                    self.task, self.objectives, item.prompt, split, examples, raw, **cost
                )
            else:
                yield Evaluation(
                    item.prompt.key,
                    split,
                    tuple(e.id for e in examples),
                    [list(r) if isinstance(r, np.ndarray) else r for r in raw],
                    {},
                    cost["examples_read"],
                    cost["tokens"],
                    cost["seconds"],
                    None,
                    cost["prompt_tokens"],
                    cost["completion_tokens"],
                )

    def _model_outputs(
        self, chunk: list[Rendered], progress: ProgressCallback | None
    ) -> tuple[list[list[Any]], list[int]]:
        """Raw outputs per prompt of the chunk (one row per text: class log-probabilities, then
        the hidden state when the readout needs it; or generated text) and how many texts of
        each the model really read.

        Cached texts are taken from the cache; the rest are computed in slices of
        ``texts_per_call`` texts (progress is reported after each slice, in evaluated examples)
        and cached.
        """
        first = chunk[0].prompt
        if first.soft and is_committee(self._soft_tensors(first)):
            return self._committee_outputs(chunk, progress)
        texts = [t for item in chunk for t in item.texts]
        n = len(chunk[0].texts)
        evaluated = [i % n < chunk[0].evaluated for i in range(len(texts))]
        generation = self.task.kind == "generation"
        variants = prompt_variants(first, generation, self.max_new_tokens)

        # The learned verbalizer reads the hidden state too: one pass gives both (what it
        # computes is kept here for the hidden-state variant of the cache).
        fresh_hidden: dict[str, np.ndarray] = {}

        def compute(piece: list[str]) -> Sequence[Any]:
            if generation:
                return self.model.generate(piece, self.max_new_tokens)
            if first.soft:
                soft = self._soft_tensors(first)
                return list(self.model.score_labels_soft(piece, first.label_words, soft))
            if len(variants) > 1:
                scores, hidden = self.model.score_labels_and_hidden(piece, first.label_words)
                fresh_hidden.update(zip(piece, hidden, strict=True))
                return list(scores)
            return list(self.model.score_labels(piece, first.label_words))

        def compute_hidden(piece: list[str]) -> Sequence[Any]:
            rest = [t for t in piece if t not in fresh_hidden]
            if rest:  # scores cached before, hidden states not: the same pass, scores unused
                _, hidden = self.model.score_labels_and_hidden(rest, first.label_words)
                fresh_hidden.update(zip(rest, hidden, strict=True))
            return [fresh_hidden[t] for t in piece]

        outputs, missing = self._cached(texts, variants[0], compute, evaluated, progress)
        if len(variants) > 1:
            hidden, also = self._cached(texts, variants[1], compute_hidden, evaluated)
            outputs = [np.concatenate([o, h]) for o, h in zip(outputs, hidden, strict=True)]
            missing = sorted(set(missing) | set(also))
        per_prompt = [outputs[i * n : (i + 1) * n] for i in range(len(chunk))]
        scored = np.bincount(np.array(missing, dtype=np.int64) // n, minlength=len(chunk))
        return per_prompt, [int(c) for c in scored]

    def _committee_outputs(
        self, chunk: list[Rendered], progress: ProgressCallback | None
    ) -> tuple[list[list[Any]], list[int]]:
        """:meth:`_model_outputs` of a committee of adapters (texts from
        :meth:`_committee_texts`): each member's label-word scores on its own texts (cached as
        :func:`~promptscout.evaluation.cache.committee_variants` says), pooled per example by
        :func:`~promptscout.evaluation.committee_scoring.pool_committee`."""
        first = chunk[0].prompt
        members = committee_members(self._soft_tensors(first))
        n = len(chunk[0].examples)  # a chunk's prompts share their examples
        evaluated = [i < chunk[0].evaluated for i in range(n)] * len(chunk)
        scores, computed = [], set()
        for j, (member, variant) in enumerate(
            zip(members, committee_variants(first.label_words, members), strict=True)
        ):
            texts = [t for item in chunk for t in item.texts[j * n : (j + 1) * n]]

            def compute(piece: list[str], adapter: Any = member.adapter) -> Sequence[Any]:
                return list(self.model.score_labels_soft(piece, first.label_words, adapter))

            # Progress counts examples: the first member's pass reports it.
            shown = progress if j == 0 else None
            outputs, missing = self._cached(texts, variant, compute, evaluated, shown)
            scores.append(np.asarray(outputs, dtype=np.float64))
            computed.update(missing)  # an example any member read counts as read
        ids = [e.id for item in chunk for e in item.examples]
        pooled = pool_committee(scores, [m.held_out for m in members], ids)
        per_prompt = [list(pooled[i * n : (i + 1) * n]) for i in range(len(chunk))]
        scored = np.bincount(np.array(sorted(computed), dtype=np.int64) // n, minlength=len(chunk))
        return per_prompt, [int(c) for c in scored]

    def _cached(
        self,
        texts: list[str],
        variant: str,
        compute: Callable[[list[str]], Sequence[Any]],
        evaluated: list[bool],
        progress: ProgressCallback | None = None,
    ) -> tuple[list[Any], list[int]]:
        """Outputs of ``compute`` on ``texts`` through the score cache, and the positions that
        were computed."""
        outputs: list = (
            self.cache.get(self.fingerprint, variant, texts) if self.cache else [None] * len(texts)
        )
        missing = [i for i, out in enumerate(outputs) if out is None]
        if progress is not None and len(missing) < len(texts):
            progress(sum(evaluated) - sum(evaluated[i] for i in missing))
        for start in range(0, len(missing), self.texts_per_call):
            positions = missing[start : start + self.texts_per_call]
            piece = [texts[i] for i in positions]
            computed = list(compute(piece))
            if self.cache is not None:
                self.cache.put(self.fingerprint, variant, piece, computed)
            for i, out in zip(positions, computed, strict=True):
                outputs[i] = out
            if progress is not None:
                progress(sum(evaluated[i] for i in positions))
        return outputs, missing

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors, _ = self._cached(texts, EMBED_VARIANT, self.model.embed, [False] * len(texts))
        return np.stack(vectors)

    def prompt_tokens(self, prompt: Prompt) -> int:
        """Tokens of the prompt's own text: instruction, template and demos with empty inputs
        (for nearest-neighbour demonstrations, the first training examples stand in)."""
        if prompt.key not in self._frame_tokens:
            blank = Example("frame", {f: "" for f in self.task.input_fields}, 0)
            demos = [self.task.example(i) for i in prompt.demos]
            demos += list(self.task.train[: prompt.nearest_demos])
            frame = self.model.count_tokens(prompt.render(blank, demos))
            if prompt.soft:  # each soft vector or virtual token takes a token's place
                frame += added_positions(self._soft_tensors(prompt))
            self._frame_tokens[prompt.key] = frame
        return self._frame_tokens[prompt.key]

    def _soft_tensors(self, prompt: Prompt) -> dict[str, np.ndarray]:
        """The soft prompt's tensors, resolved once per digest."""
        if prompt.soft not in self._soft:
            tensors = resolve_soft(self.task, self.soft_resolver, prompt.soft)
            if len(self._soft) > 64:  # one searcher proposes a new digest per epoch
                self._soft.clear()
            self._soft[prompt.soft] = tensors
        return self._soft[prompt.soft]
