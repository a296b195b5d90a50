"""Soft prompts (prompt tuning): learned vectors before the input, trained by gradient descent.

The prompt the model reads is ``[E_P; E_X]``: ``vectors`` learned embeddings ``E_P`` followed by
the embeddings of the rendered discrete part (``template`` filled with the example; ``{text}`` by
default). The vectors start from the embeddings of ``init_text`` (or of random common tokens, or
random noise) and are trained with Adam on the class-normalised cross-entropy of the gold label
words over the task's *train* split, the model frozen. With ``parametric = "final_norm"`` the
final norm's weights (one vector of ``hidden`` numbers) are trained as well and travel with the
prompt: parametric prompt learning that keeps the "prompt" small.

Each ``ask`` trains ``epochs_per_ask`` epochs and proposes the current tensors as a
:class:`~promptscout.prompts.Prompt` whose ``soft`` field is their digest; the campaign takes the
tensors from :meth:`SoftSearcher.soft_tensors` into its store before scoring them. ``tell`` gets
the dev score: early stopping keeps the best tensors by dev cross-entropy and stops after
``patience`` epochs without improvement (or ``max_epochs``). Racing may stop a soft candidate on
a minibatch; it is then compared with the best on exactly the examples it was scored on.

With ``project = true`` every ask also proposes the discrete prompt made of each vector's nearest
vocabulary token (cosine) before the template, a readable (if usually weaker) relative.

The searcher's type name is ``soft``. This package holds its options (:mod:`.config`), the searcher
(:mod:`.searcher`) and the training code (:mod:`.training`); scoring a soft prompt is a model
capability (:mod:`promptscout.model.soft_input`), and the tensors as plain data are
:mod:`promptscout.soft_tensors`.

Example:
    >>> from promptscout.model import load_model
    >>> from promptscout.searchers.base import SearchContext
    >>> from promptscout.searchers.prompt_tuning import SoftConfig, SoftSearcher
    >>> from promptscout.tasks import load_task
    >>> task = load_task("sst-2")
    >>> model = load_model("smollm2-135m-instruct")  # doctest: +SKIP
    >>> context = SearchContext(task, ("negative", "positive"), 0, model_provider=lambda: model)
    >>> searcher = SoftSearcher(SoftConfig(vectors=8, template="Review: {text}\\nSentiment:"),
    ...                         context)  # doctest: +SKIP
    >>> (prompt,) = searcher.ask(1)  # one epoch over train  # doctest: +SKIP
    >>> searcher.soft_tensors(prompt.soft)["prefix"].shape  # doctest: +SKIP
    (8, 576)
"""

from __future__ import annotations

from promptscout.searchers.prompt_tuning.config import SoftConfig
from promptscout.searchers.prompt_tuning.searcher import SoftSearcher

__all__ = ["SoftConfig", "SoftSearcher"]
