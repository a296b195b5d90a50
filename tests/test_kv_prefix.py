"""Tests of scoring after a learned key/value prefix (prefix tuning) on tiny random models.

Every score is compared with PEFT's own forward of a prefix-tuning adapter: one sequence per
(text, label word), full logits, the adapter's prefix handed to the model as PEFT hands it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import PrefixTuningConfig, get_peft_model, get_peft_model_state_dict
from test_engine import DEMOS, MULTI, WORDS, demo_texts, input_first_texts
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from promptscout.errors import PromptscoutError
from promptscout.model import continuation, load_model
from promptscout.model.kv_prefix import kv_shape, peft_prefix_to_kv

N_VIRTUAL = 5


class PeftReference:
    """A prefix-tuning adapter with a random (non-trivial) prefix over a tiny model, and
    ``log P(word | text)`` from PEFT's own forward, one sequence at a time."""

    def __init__(self, folder: Path, seed: int = 0) -> None:
        self.tok = AutoTokenizer.from_pretrained(folder)
        hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=N_VIRTUAL)
        self.peft = get_peft_model(copy.deepcopy(hf), config).eval()
        torch.manual_seed(seed)
        with torch.no_grad():  # keys and values well above the scale of the model's own
            self.peft.prompt_encoder["default"].embedding.weight.normal_(0.0, 1.0)
        saved = get_peft_model_state_dict(self.peft)["prompt_embeddings"]
        layers, kv_heads, head_dim = kv_shape(hf.config)
        self.kv = peft_prefix_to_kv(
            saved.numpy(), layers=layers, kv_heads=kv_heads, head_dim=head_dim
        )

    def log_probs(self, ids: list[int], word: list[int]) -> float:
        """``log P(word | ids)`` after the adapter's prefix."""
        row = torch.tensor([ids + word[:-1]])
        with torch.no_grad():
            logits = self.peft(input_ids=row, attention_mask=torch.ones_like(row)).logits[0]
        logp = torch.log_softmax(logits.double(), -1)
        return sum(float(logp[len(ids) - 1 + j, w]) for j, w in enumerate(word))

    def __call__(self, texts: list[str], words: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(words)))
        for i, text in enumerate(texts):
            ids = self.tok(text)["input_ids"]
            for c, word in enumerate(words):
                w = self.tok(continuation(text, word), add_special_tokens=False)["input_ids"]
                out[i, c] = self.log_probs(ids, w)
        return out


@pytest.fixture(scope="module")
def reference(tiny_causal_dir: Path) -> PeftReference:
    return PeftReference(tiny_causal_dir)


@pytest.fixture(scope="module", params=["lean", "hf", "full"])
def model(tiny_causal_dir: Path, request: pytest.FixtureRequest):
    """A private model with the lean Llama pass, with the model's own body forward and cache,
    or with only the model's full forward (logits everywhere)."""
    model = load_model(str(tiny_causal_dir), batch_size=4)
    assert model._fast is not None and model._share
    if request.param == "hf":
        model._fast = None
    elif request.param == "full":
        model._body = model._fast = None
    return model


def check(model, reference: PeftReference, texts: list[str], words: list[str]) -> np.ndarray:
    got = model.score_labels_kv(texts, words, reference.kv)
    assert got.shape == (len(texts), len(words)) and got.dtype == np.float64
    np.testing.assert_allclose(got, reference(texts, words), atol=1e-5, rtol=0)
    return got


@pytest.mark.parametrize("words", [WORDS, MULTI])
def test_scores_equal_peft_forward(model, reference: PeftReference, words: list[str]) -> None:
    texts = ["the movie was great", "a terrible film , an awful story .", "it was", "good"]
    got = check(model, reference, texts, words)
    # The prefix matters: without it the numbers differ.
    assert np.abs(got - model.score_labels(texts, words)).max() > 1e-2


def test_shared_rows_after_the_prefix(model, reference: PeftReference) -> None:
    """Rows that share an instruction and demonstrations share them after the learned prefix."""
    model.batch_size = 3
    texts = demo_texts() + input_first_texts()[:8] + ["it was", "it was"]
    assert len(model.tokenize(DEMOS)) > 60
    before = (model.tokens_forwarded, model.tokens_computed)
    got = check(model, reference, texts, MULTI)
    forwarded = model.tokens_forwarded - before[0]
    computed = model.tokens_computed - before[1]
    assert forwarded == sum(len(r) for r in model._label_rows(texts, MULTI, reserve=N_VIRTUAL)[0])
    assert computed < forwarded / 2  # the demonstrations ran once
    # Unshared, and shared in many small chunks and passes: the same numbers.
    default = (model.min_shared_tokens, model.cache_budget_tokens, model.batch_tokens)
    try:
        model.min_shared_tokens = 1 << 40
        np.testing.assert_allclose(
            model.score_labels_kv(texts, MULTI, reference.kv), got, atol=1e-5
        )
        model.min_shared_tokens, model.cache_budget_tokens, model.batch_tokens = 0, 1, 1
        np.testing.assert_allclose(
            model.score_labels_kv(texts, MULTI, reference.kv), got, atol=1e-5
        )
    finally:
        model.min_shared_tokens, model.cache_budget_tokens, model.batch_tokens = default


def test_sharing_off(tiny_causal_dir: Path, reference: PeftReference) -> None:
    model = load_model(str(tiny_causal_dir), batch_size=4)
    model._share = False
    texts = demo_texts()[:3] + ["it was"]
    before = (model.tokens_forwarded, model.tokens_computed)
    check(model, reference, texts, MULTI)
    assert model.tokens_computed - before[1] > (model.tokens_forwarded - before[0]) / 2


def test_texts_cut_to_the_context_less_the_prefix(tiny_causal_dir: Path) -> None:
    """A long text keeps what fits after the n virtual positions and the longest label word;
    its last positions reach the model's context limit, as in PEFT."""
    reference = PeftReference(tiny_causal_dir, seed=1)
    model = load_model(str(tiny_causal_dir), batch_size=4)
    words = ["positive", "zqxv"]
    long = ["the movie was great . " * 60 + f"{x} It was" for x in ("good", "bad")]
    got = model.score_labels_kv(long, words, torch.from_numpy(reference.kv))
    tok = reference.tok
    longest = max(len(tok(" " + w, add_special_tokens=False)["input_ids"]) for w in words)
    budget = model.max_length - N_VIRTUAL - longest + 1
    for i, text in enumerate(long):
        ids = tok(text)["input_ids"]
        assert len(ids) > budget
        kept = ids[:1] + ids[len(ids) - budget + 1 :]  # the BOS stays
        for c, word in enumerate(words):
            w = tok(" " + word, add_special_tokens=False)["input_ids"]
            assert got[i, c] == pytest.approx(reference.log_probs(kept, w), abs=1e-5)


def test_multi_head_attention(tiny_causal_dir: Path, tmp_path: Path) -> None:
    """As many key/value heads as query heads (the tiny model's own attention is grouped)."""
    config = LlamaConfig.from_pretrained(tiny_causal_dir)
    assert config.num_key_value_heads < config.num_attention_heads  # grouped-query attention
    config.num_key_value_heads = config.num_attention_heads
    torch.manual_seed(3)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_causal_dir).save_pretrained(tmp_path)
    reference = PeftReference(tmp_path, seed=2)
    assert reference.kv.shape == (2, 2, 4, N_VIRTUAL, 8)
    model = load_model(str(tmp_path), batch_size=4)
    assert model._fast is not None
    check(model, reference, demo_texts()[:3] + ["it was"], MULTI)


# -- the conversion ------------------------------------------------------------------------------


def test_conversion_layout() -> None:
    """Layer l's keys are PEFT's index 2l of ``[n, layers * 2, heads, head_dim]``, its values
    2l + 1."""
    layers, kv_heads, head_dim, n = 3, 2, 4, 5
    embedding = np.arange(n * layers * 2 * kv_heads * head_dim, dtype=np.float32)
    embedding = embedding.reshape(n, -1)
    kv = peft_prefix_to_kv(embedding, layers=layers, kv_heads=kv_heads, head_dim=head_dim)
    assert kv.shape == (layers, 2, kv_heads, n, head_dim) and kv.flags.c_contiguous
    view = embedding.reshape(n, layers * 2, kv_heads, head_dim)
    for layer in range(layers):
        for part in (0, 1):
            np.testing.assert_array_equal(kv[layer, part], view[:, 2 * layer + part].swapaxes(0, 1))


def test_kv_shape_fallbacks() -> None:
    config = LlamaConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=2)
    assert kv_shape(config) == (2, 4, 8)
    config = LlamaConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2)
    config.head_dim = None
    assert kv_shape(config)[1:] == (2, 8)


def test_wrong_shapes_are_refused(tiny_causal: object) -> None:
    with pytest.raises(PromptscoutError, match=r"\[n, 64\]; got \[5, 48\]"):
        peft_prefix_to_kv(np.zeros((5, 48)), layers=2, kv_heads=2, head_dim=8)
    with pytest.raises(PromptscoutError, match="got"):
        peft_prefix_to_kv(np.zeros(64), layers=2, kv_heads=2, head_dim=8)
    with pytest.raises(PromptscoutError, match=r"\[2, 2, 2, n, 8\]; got \[2, 2, 4, 5, 8\]"):
        tiny_causal.score_labels_kv(["it was"], WORDS, torch.zeros(2, 2, 4, 5, 8))
