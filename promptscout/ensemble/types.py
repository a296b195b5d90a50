"""The ensemble record: which prompts, how they are pooled, with which fitted weights."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from promptscout.ensemble.calibration import calibrate
from promptscout.ensemble.pooling import average, class_log_probs, vote, weighted
from promptscout.errors import PromptscoutError
from promptscout.prompts import Prompt

if TYPE_CHECKING:
    from promptscout.tasks import Task

METHODS = ("average", "vote", "weighted")


@dataclass(frozen=True)
class Ensemble:
    """Prompts whose predictions are pooled into one.

    Attributes:
        method: ``"average"`` (mean of class probabilities), ``"vote"`` (majority vote) or
            ``"weighted"`` (log-linear pool with weights and class biases fitted on dev).
        members: The member prompts, best (by dev) first.
        weights: One weight per member (``weighted`` only).
        bias: One bias per class (``weighted`` only).
        calibrate: Whether each member is contextually calibrated before pooling. A calibrated
            single prompt is an ``average`` ensemble of one member.
    """

    method: str
    members: tuple[Prompt, ...]
    weights: tuple[float, ...] = ()
    bias: tuple[float, ...] = ()
    calibrate: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        object.__setattr__(self, "bias", tuple(float(b) for b in self.bias))
        if self.method not in METHODS:
            raise PromptscoutError(
                f"ensemble method {self.method!r} is unknown; use one of {', '.join(METHODS)}"
            )
        if not self.members:
            raise PromptscoutError("an ensemble needs at least one member prompt")
        if self.method == "weighted" and len(self.weights) != len(self.members):
            raise PromptscoutError(
                f"a weighted ensemble needs one weight per member: {len(self.weights)} weights "
                f"for {len(self.members)} members"
            )

    @property
    def key(self) -> str:
        """A stable id (16 hex digits) of the method, calibration and members."""
        identity = [self.method, self.calibrate, [p.key for p in self.members]]
        return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()[:16]

    @property
    def name(self) -> str:
        """A short label such as ``weighted(3)`` or ``calibrated``."""
        if len(self.members) == 1:
            return "calibrated" if self.calibrate else "single"
        return f"{self.method}({len(self.members)})" + (" calibrated" if self.calibrate else "")

    def check_task(self, task: Task) -> None:
        """Raise a one-line error if a member cannot be used on ``task``."""
        if task.kind != "classification":
            raise PromptscoutError(
                f"ensembles pool class probabilities; task '{task.name}' is {task.kind}"
            )
        for member in self.members:
            member.check_task(task)

    def combine(
        self,
        outputs: Sequence[np.ndarray],
        content_free: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Pool the members' outputs on the same examples into ``[n, classes]`` class
        log-probabilities.

        Args:
            outputs: Per member (in member order), its ``[n, classes]`` label-word
                log-probabilities (:attr:`Evaluation.outputs`).
            content_free: Per member, its outputs on the content-free pseudo-split (needed when
                :attr:`calibrate` is set).
        """
        members = pool_inputs(outputs, content_free if self.calibrate else None)
        if self.method == "average":
            return average(members)
        if self.method == "vote":
            return vote(members)
        return weighted(members, self.weights, self.bias)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``prompt`` of an ensemble row in leaderboards and exports)."""
        data: dict[str, Any] = {
            "method": self.method,
            "calibrate": self.calibrate,
            "members": [p.to_dict() for p in self.members],
        }
        if self.method == "weighted":
            data["weights"] = list(self.weights)
            data["bias"] = list(self.bias)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ensemble:
        """Read :meth:`to_dict` output back."""
        known = {"method", "calibrate", "members", "weights", "bias"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PromptscoutError(f"unknown ensemble key(s) {unknown}; known: {sorted(known)}")
        members = data.get("members")
        if not isinstance(members, list):
            raise PromptscoutError("an ensemble needs 'members', a list of prompts")
        return cls(
            str(data.get("method", "")),
            tuple(Prompt.from_dict(m) for m in members),
            tuple(data.get("weights") or ()),
            tuple(data.get("bias") or ()),
            bool(data.get("calibrate", False)),
        )


def pool_inputs(
    outputs: Sequence[np.ndarray], content_free: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Members' outputs as ``[members, n, classes]`` class log-probabilities, each member
    calibrated with its content-free outputs when those are given."""
    members = class_log_probs(outputs)
    if content_free is None:
        return members
    if len(content_free) != len(members):
        raise ValueError(f"{len(content_free)} content-free outputs for {len(members)} members")
    return np.stack([calibrate(m, cf) for m, cf in zip(members, content_free, strict=True)])
