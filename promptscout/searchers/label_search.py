"""Label-word search from the model's vocabulary, for the searchers that compose prompts.

A probe on the training examples proposes words per class, in the spirit of LM-BFF's automatic
label words (Gao et al. 2021): every training input is rendered with a probe template, the
model's next-token distribution is read where the label word would go, and for each class the
tokens the model finds likely after that class's inputs (the 200 most likely on average) are
ranked by how much more likely they are after that class's inputs than after the other classes'.
A word qualifies when it is a plain word (letters only, at least three) that the model reads as
one token after a space; each class gets its own words. The probe is deterministic given the
model and the training examples, so a resumed campaign proposes the same words.

Candidates that use these words were chosen with the training labels: their scores on the
training examples are not held-out evidence (the campaign's selection knows it).
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


def propose_label_words(
    model: LanguageModel, task: Task, template: str, per_class: int, taken: Sequence[str] = ()
) -> list[list[str]]:
    """``per_class`` new words per class (fewer if the vocabulary has no more), best first.

    Args:
        model: A model with a next-token distribution (an in-process Hugging Face model).
        task: The task; its training examples are read, with their labels.
        template: The probe template (``{field}`` placeholders; no demonstrations).
        per_class: How many words to propose per class.
        taken: Words never proposed (e.g. the candidates the campaign already has).
    """
    if task.kind != "classification" or not task.train:
        raise PromptscoutError("label-word search needs a classification task with train examples")
    probe = Prompt(template, task.label_words)
    log_probs = model.next_token_log_probs([probe.render(e) for e in task.train])
    labels = np.array([int(e.label) for e in task.train])
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
