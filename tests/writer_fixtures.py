"""Proposers for the writer searchers' tests: scripted answers, so that what the guardrails
keep and drop is known exactly, and a campaign that writes with one. Scoring always uses the tiny
model; these only write."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from promptscout.campaign import Campaign
from promptscout.model.base import LanguageModel

GOOD = [
    "Decide whether the review is good or bad.",
    "Tell if the movie review is positive.",
    "Judge the opinion of the text.",
    "Say whether the writer liked the film.",
]


class ScriptedProposer(LanguageModel):
    """A proposer that answers from a script, in order, and keeps every meta-prompt it read
    (the scoring model stays the tiny one: this one only writes)."""

    name = "scripted"
    kind = "causal"
    max_length = 2048
    batch_size = 1

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.read: list[str] = []
        self.tokens_forwarded = self.tokens_computed = self.flops = 0

    @property
    def fingerprint(self) -> str:
        return "scripted"

    def score_labels(self, texts, label_words):
        raise AssertionError("the proposer only writes")

    def generate(self, texts, max_new_tokens=32, temperature=0.0, seed=0):
        out = []
        for text in texts:
            self.read.append(text)
            out.append(self.answers.pop(0) if self.answers else "")
        self.tokens_forwarded += sum(len(t.split()) for t in texts)
        return out

    def tokenize(self, text):
        return list(range(len(text.split())))

    def input_embeddings(self):
        raise AssertionError("the proposer only writes")


class SeededProposer(ScriptedProposer):
    """Answers with ``answers[digest(text, seed, row)]``: the same meta-prompt and seed give the
    same answer in every run, as a seeded model does (a resumed campaign asks again what its
    killed run had asked)."""

    def generate(self, texts, max_new_tokens=32, temperature=0.0, seed=0):
        self.read += list(texts)
        self.tokens_forwarded += sum(len(t.split()) for t in texts)
        return [self._pick(f"{text}|{seed}|{row}") for row, text in enumerate(texts)]

    def _pick(self, salt: str) -> str:
        digest = int(hashlib.sha256(salt.encode("utf-8")).hexdigest()[:8], 16)
        return self.answers[digest % len(self.answers)]


class WriterCampaign(Campaign):
    """A campaign whose ``[proposer]`` is the given proposer."""

    def __init__(self, *args, proposer: LanguageModel, **kwargs) -> None:
        self._scripted = proposer
        super().__init__(*args, **kwargs)

    def proposer(self) -> LanguageModel:
        return self._scripted
