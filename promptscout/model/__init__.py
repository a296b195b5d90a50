"""The language-model core: the only place in promptscout that imports torch and transformers.

Importing this package is cheap; torch and transformers load when a model does. A model behind an
OpenAI-compatible server (``openai:MODEL_ID`` with :class:`ServedOptions`) is a
:class:`ServedModel` (:mod:`promptscout.model.served`), which needs neither.

Example:
    >>> from promptscout.model import load_model
    >>> model = load_model("smollm2-135m-instruct")  # doctest: +SKIP
    >>> words = ["negative", "positive"]  # doctest: +SKIP
    >>> model.score_labels(["Review: a moving film\\nSentiment:"], words)  # doctest: +SKIP
"""

from __future__ import annotations

from promptscout.model.base import LanguageModel
from promptscout.model.embedded import EMBEDDED_MODEL_NAME
from promptscout.model.loading import DTYPES, known_models, load_model
from promptscout.model.served import ServedModel, ServedOptions
from promptscout.prompts import continuation

__all__ = [
    "DTYPES",
    "EMBEDDED_MODEL_NAME",
    "LanguageModel",
    "ServedModel",
    "ServedOptions",
    "continuation",
    "known_models",
    "load_model",
]
