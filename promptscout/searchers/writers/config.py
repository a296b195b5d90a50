"""Options every writer shares (:class:`WriterConfig`) and each writer's own."""

from __future__ import annotations

from dataclasses import dataclass

from promptscout.options import OptionError, option
from promptscout.searchers.base import SearcherConfig

TARGETS = ("instruction", "template")


@dataclass
class WriterConfig(SearcherConfig):
    """What the writers (``ape``, ``opro``, ``reflect``) share: the proposer writes
    instructions, each combined with ``templates`` and the campaign's label words."""

    templates: list[str] = option(
        [],
        help="Templates a written instruction is put before, each making one prompt (default: "
        '"Input: {field}" per input field, then "Answer:").',
    )
    instructions: list[str] = option(
        [""], help='Instructions scored first, the writers\' starting pool ("" for none).'
    )
    rounds: int = option(3, help="Writing rounds after the starting pool is scored.")
    writes_per_round: int = option(4, help="Meta-prompts sent to the proposer per round.")
    samples_per_write: int = option(
        2, help="Instructions sampled per meta-prompt (different draws of one text)."
    )
    demos_per_write: int = option(
        4, help="Training examples (input, then label word) shown per meta-prompt."
    )
    temperature: float = option(0.8, help="Sampling temperature of the proposer (0: greedy).")
    max_new_tokens: int = option(48, help="Most tokens the proposer writes per answer.")
    max_writes: int = option(
        48,
        help="Most answers the proposer writes in the whole campaign (its own budget, counted "
        "apart from the search split's).",
    )
    max_prompt_tokens: int = option(
        96, help="Longest written prompt (instruction and template, in tokens); longer: dropped."
    )
    read_examples: int = option(
        16,
        help="Training examples the writer may read (a seeded sample, at most half the training "
        "split): the rest stay unseen, so that selection can validate its prompts on them.",
    )
    meta_prompt: str = option(
        "", help="A meta-prompt file of your own, with the shipped file's '### ' sections."
    )
    chat: bool = option(
        True, help="Send meta-prompts as a chat message where the proposer takes chat."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rounds", "read_examples"):
            if getattr(self, name) < 0:
                raise OptionError(name, f"must be at least 0, got {getattr(self, name)}")
        for name in ("writes_per_round", "samples_per_write", "demos_per_write",
                     "max_new_tokens", "max_writes", "max_prompt_tokens"):  # fmt: skip
            if getattr(self, name) < 1:
                raise OptionError(name, f"must be at least 1, got {getattr(self, name)}")
        if self.temperature < 0:
            raise OptionError("temperature", f"must be at least 0, got {self.temperature}")
        if not self.instructions:
            raise OptionError("instructions", 'needs at least one instruction ("" for none)')


@dataclass
class ApeConfig(WriterConfig):
    """APE: instructions induced from training demonstrations; later rounds resample around
    the best so far (APE's iterative mode)."""

    resample_top: int = option(2, help="Rounds after the first rewrite this many best prompts.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.resample_top < 1:
            raise OptionError("resample_top", f"must be at least 1, got {self.resample_top}")


@dataclass
class OproConfig(WriterConfig):
    """OPRO: the proposer sees the best prompts so far with their scores, worst to best."""

    history: int = option(8, help="Best earlier prompts shown, with their scores.")
    target: str = option(
        "instruction",
        help='What the proposer writes: "instruction" (put before the templates) or "template" '
        "(a whole template, which must hold an input field).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.history < 1:
            raise OptionError("history", f"must be at least 1, got {self.history}")
        if self.target not in TARGETS:
            raise OptionError("target", f"must be one of {', '.join(TARGETS)}, got {self.target!r}")


@dataclass
class ReflectConfig(WriterConfig):
    """Reflect (ProTeGi, GEPA): a parent from the Pareto pool is scored on training examples,
    the proposer diagnoses its mistakes in words and rewrites its instruction."""

    minibatch: int = option(8, help="Training examples a parent is scored on per reflection.")
    errors_shown: int = option(4, help="Most wrongly answered examples shown to the proposer.")
    merge_every: int = option(
        3,
        help="Every n-th child merges two pool members that win on different examples (0: never).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("minibatch", "errors_shown"):
            if getattr(self, name) < 1:
                raise OptionError(name, f"must be at least 1, got {getattr(self, name)}")
        if self.merge_every < 0:
            raise OptionError("merge_every", f"must be at least 0, got {self.merge_every}")
