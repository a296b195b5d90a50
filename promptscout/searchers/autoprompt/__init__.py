"""AutoPrompt: gradient-guided search over discrete trigger tokens (Shin et al. 2020).

A template such as ``"{text} [T][T][T][T][T]"`` holds trigger slots. Each search step
accumulates the gradient of the label loss (minus the log-probability of the gold class's label
word) with respect to the trigger token embeddings over a batch of train examples, picks a slot,
and ranks every vocabulary token by the first-order estimate of how much swapping it in lowers
the loss, ``-(E . g)`` (HotFlip). The best ``candidates`` tokens that pass the filters (special
tokens, label words, tokens whose text does not tokenise back to themselves in the prompt) are
re-scored exactly, in one batched pass on fresh train examples, and the best replaces the slot's
token only if it lowers the loss. Each accepted swap is a prompt the campaign scores on dev;
dev scores come back through ``tell`` and the best one is kept.

Optionally the label words are searched first: a linear probe on the hidden state at the
prediction position picks, per class, the vocabulary token whose output embedding it puts
furthest into that class.

The searcher needs the campaign's model (white-box access through
:meth:`~promptscout.searchers.SearchContext.model`); the gradient code lives in
:mod:`promptscout.searchers.autoprompt.gradients`, the trigger template in
:mod:`promptscout.searchers.triggers`.
"""

from __future__ import annotations

from promptscout.searchers.autoprompt.config import AutoPromptConfig
from promptscout.searchers.autoprompt.searcher import AutoPromptSearcher, label_loss
from promptscout.searchers.triggers import TriggerTemplate

__all__ = ["AutoPromptConfig", "AutoPromptSearcher", "TriggerTemplate", "label_loss"]
