"""The parametric half of prompt learning on PEFT: prompt tuning, prefix tuning, P-tuning and
LoRA (prompt-based fine-tuning), one searcher (``type = "peft"``, option ``method``).

Each method trains, with the model's weights frozen, a small set of numbers on the
prompt-learning loss over the label words, ``L = -sum log P(y = gold | x, prompt)``
(class-normalised over the label words), on the task's *train* split:

- ``prompt_tuning``: ``virtual_tokens`` input embeddings before the text (Lester et al.);
- ``prefix_tuning``: keys and values of ``virtual_tokens`` positions in every layer (Li & Liang);
- ``p_tuning``: input embeddings produced by a small MLP prompt encoder (Liu et al.);
- ``lora``: low-rank updates of the attention and MLP projections, the template and label
  words kept (prompt-based fine-tuning in its parameter-efficient form).

Each ``ask`` trains ``epochs_per_ask`` epochs and proposes the adapter as a
:class:`~promptscout.prompts.Prompt` whose ``soft`` field is the digest of its bundle
(:mod:`promptscout.adapters`): the campaign stores it, evaluators score it like any candidate
(:mod:`promptscout.model.adapter_input`: prefix tuning through the shared-prefix engine, LoRA
merged into a copy of the weights), and ``export`` writes it as a PEFT adapter folder that
``PeftModel.from_pretrained(base_model, folder)`` loads. Early stopping on the dev
cross-entropy is :class:`~promptscout.searchers.trained.TrainedSearcher`'s; the searcher's saved
state is a checkpoint (parameters and AdamW's moments) after every round of epochs, so a
killed campaign resumes from its last round.

With ``members`` of 2 or more the type builds a committee of adapters that differ only by their
seeds, pooled as one candidate at the campaign's end (:mod:`.committee`); with ``cross_fit`` as
well, a committee whose members also learn from the search examples outside their own fold,
proposed as one prompt scored out of fold (:mod:`.cross_fit`).

This package holds the options (:mod:`.config`), the searcher (:mod:`.searcher`), the
committees (:mod:`.committee`, :mod:`.cross_fit`) and the training (:mod:`.training`).
"""

from __future__ import annotations

from promptscout.searchers.parametric.config import PeftSearcherConfig
from promptscout.searchers.parametric.searcher import PeftSearcher

__all__ = ["PeftSearcher", "PeftSearcherConfig"]
