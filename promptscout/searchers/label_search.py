"""Label-word search from the model's vocabulary, for the searchers that compose prompts.

A probe on the training examples proposes words per class, in the spirit of LM-BFF's automatic
label words (Gao et al. 2021): every training input is rendered with a probe template, the
model's next-token distribution is read where the label word would go, and for each class the
tokens the model finds likely after that class's inputs (the 200 most likely on average) are
ranked by how much more likely they are after that class's inputs than after the other classes'.
A word qualifies when it is a plain word (letters only, at least three) that the model reads as
one token after a space; each class gets its own words. The probe is deterministic given the
model and the training examples, so a resumed campaign proposes the same words.

Cross-fitting: a searcher's probe reads only half of the training examples (every class
halved, seeded: :func:`probe_ids`), and a candidate that uses its words notes them as read
(``train_read``), so the campaign's selection validates it on the other half, which the words
were never chosen with, instead of trusting the search split alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from promptscout.errors import PromptscoutError
from promptscout.model import LanguageModel
from promptscout.prompts import Prompt
from promptscout.tasks import Task

LIKELY = 200  # tokens per class, by mean log-probability, that are ranked by contrast
_WORD = re.compile(r" [A-Za-z]{3,}")


def probe_ids(task: Task, seed: int) -> tuple[str, ...]:
    """The training examples a searcher's probe reads: the first half (rounded up) of each
    class, in a permutation drawn with ``seed``; in training order."""
    rng = np.random.default_rng(seed)
    by_class: dict[object, list[int]] = {}
    for i, example in enumerate(task.train):
        by_class.setdefault(example.label, []).append(i)
    chosen: set[int] = set()
    for _, members in sorted(by_class.items(), key=lambda item: str(item[0])):
        order = rng.permutation(len(members))
        chosen.update(members[int(k)] for k in order[: (len(members) + 1) // 2])
    return tuple(task.train[i].id for i in sorted(chosen))


def propose_label_words(
    model: LanguageModel,
    task: Task,
    template: str,
    per_class: int,
    taken: Sequence[str] = (),
    read: Sequence[str] | None = None,
) -> list[list[str]]:
    """``per_class`` new words per class (fewer if the vocabulary has no more), best first.

    Args:
        model: A model with a next-token distribution (an in-process Hugging Face model).
        task: The task; its training examples are read, with their labels.
        template: The probe template (``{field}`` placeholders; no demonstrations).
        per_class: How many words to propose per class.
        taken: Words never proposed (e.g. the candidates the campaign already has).
        read: Ids of the training examples the probe reads (default: all of them).
    """
    if task.kind != "classification" or not task.train:
        raise PromptscoutError("label-word search needs a classification task with train examples")
    probe = Prompt(template, task.label_words)
    wanted = set(read) if read is not None else None
    examples = [e for e in task.train if wanted is None or e.id in wanted]
    log_probs = model.next_token_log_probs([probe.render(e) for e in examples])
    labels = np.array([int(e.label) for e in examples])
    used = {w.strip().lower() for w in taken}
    proposals: list[list[str]] = []
    for c in range(task.num_classes):
        mine, others = log_probs[labels == c], log_probs[labels != c]
        if not len(mine):
            proposals.append([])
            continue
        likely = np.argsort(-mine.mean(axis=0), kind="stable")[:LIKELY]
        contrast = mine.mean(axis=0) - (others.mean(axis=0) if len(others) else 0.0)
        words: list[str] = []
        for token in sorted(likely, key=lambda t: -contrast[t]):
            word = _single_token_word(model, int(token))
            if word is not None and word.lower() not in used:
                words.append(word)
                used.add(word.lower())
                if len(words) == per_class:
                    break
        proposals.append(words)
    return proposals


def _single_token_word(model: LanguageModel, token: int) -> str | None:
    """The word a token spells after a space, if it is a plain word read back as that token."""
    text = model.token_text(token)
    if not _WORD.fullmatch(text):
        return None
    return text.strip() if model.tokenize(text) == [token] else None
