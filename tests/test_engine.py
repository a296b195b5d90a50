"""Tests of the causal scoring engine (shared-prefix reuse, batching) on tiny random models.

Every score is compared with a brute-force reference: one text at a time, one full forward per
(text, label word), full logits, no cache, no batching.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_tiny_causal
from transformers import AutoModelForCausalLM, AutoTokenizer

from promptscout.model import continuation, load_model
from promptscout.model.compute import configure_threads, physical_cores
from promptscout.model.prefix import build_tree, iter_nodes

WORDS = ["positive", "negative"]
MULTI = ["positive", "zqxv", "great film", "bad"]  # single, multi, multi, single
DEMOS = (
    "Review: the movie was great and the review was positive\nSentiment: positive\n\n"
    "Review: it was a bad movie , a terrible film\nSentiment: negative\n\n"
    "Review: this film is great ! i loved it .\nSentiment: positive\n\n"
    "Review: an awful story . i hated it\nSentiment: negative\n\n"
)
INPUTS = [
    "the acting is good",
    "the plot is bad",
    "it was a wonderful story , a great film , a good movie and the review was positive",
    "a",
    "terrible",
    "the movie was great",
]
TRIGGERS = ["great", "bad film", "the", "review : it is", "an awful", "good good good"]


class Reference:
    """Brute force: ``log P(word | text)`` from one full forward per (text, word)."""

    def __init__(self, folder: Path) -> None:
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    def __call__(self, texts: list[str], words: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(words)))
        for i, text in enumerate(texts):
            t = self.tok(text)["input_ids"]
            for c, word in enumerate(words):
                w = self.tok(continuation(text, word), add_special_tokens=False)["input_ids"]
                with torch.no_grad():
                    logits = self.hf(torch.tensor([t + w])).logits[0].double()
                logp = torch.log_softmax(logits, -1)
                out[i, c] = sum(float(logp[len(t) - 1 + j, w[j]]) for j in range(len(w)))
        return out


@pytest.fixture(scope="module")
def reference(tiny_causal_dir: Path) -> Reference:
    return Reference(tiny_causal_dir)


@pytest.fixture(scope="module", params=["lean", "hf"])
def model(tiny_causal_dir: Path, request: pytest.FixtureRequest):
    """A private model (tests change its batching knobs), with the lean Llama pass or with the
    model's own forward and cache."""
    model = load_model(str(tiny_causal_dir), batch_size=4)
    assert model._fast is not None and model._share
    if request.param == "hf":
        model._fast = None
    return model


def demo_texts() -> list[str]:
    """One prompt with four demonstrations over many inputs: a long common token prefix."""
    return [f"{DEMOS}Review: {x}\nSentiment:" for x in INPUTS]


def input_first_texts() -> list[str]:
    """Many input-first prompts over the same inputs: each input's tokens are shared."""
    return [f"{x} {t} It was" for x in INPUTS for t in TRIGGERS]


def check(model, reference: Reference, texts: list[str], words: list[str]) -> np.ndarray:
    got = model.score_labels(texts, words)
    assert got.shape == (len(texts), len(words)) and got.dtype == np.float64
    np.testing.assert_allclose(got, reference(texts, words), atol=1e-5, rtol=0)
    return got


# -- the engine against brute force --------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_long_common_prefix(model, reference: Reference, batch_size: int) -> None:
    model.batch_size = batch_size
    texts = demo_texts()
    assert len(model.tokenize(DEMOS)) > 60
    before = (model.tokens_forwarded, model.tokens_computed)
    check(model, reference, texts, WORDS)
    forwarded = model.tokens_forwarded - before[0]
    computed = model.tokens_computed - before[1]
    assert forwarded == sum(len(model.tokenize(t)) + 1 for t in texts)  # + BOS
    assert computed < forwarded / 2  # the demonstrations ran once


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_input_first_prompts_share_each_input(model, reference: Reference, batch_size: int) -> None:
    model.batch_size = batch_size
    texts = input_first_texts()
    before = (model.tokens_forwarded, model.tokens_computed)
    check(model, reference, texts, WORDS)
    assert model.tokens_computed - before[1] < model.tokens_forwarded - before[0]


def test_mixed_groups_and_order(model, reference: Reference) -> None:
    model.batch_size = 4
    unrelated = ["it was", "good", "Question: is the review positive or negative?\n", "bad"]
    texts = demo_texts() + input_first_texts()[:14] + unrelated
    texts += [f"{DEMOS}{x} {t} It was" for x in INPUTS[:3] for t in TRIGGERS[:3]]  # nested
    random.Random(0).shuffle(texts)
    got = check(model, reference, texts, WORDS)
    order = list(range(len(texts)))
    random.Random(1).shuffle(order)
    shuffled = model.score_labels([texts[k] for k in order], WORDS)
    np.testing.assert_allclose(shuffled, got[order], atol=1e-5, rtol=0)


def test_multi_token_words_reuse_the_text(model, reference: Reference) -> None:
    model.batch_size = 4
    assert len(model.tokenize(" zqxv")) > 2 and len(model.tokenize(" great film")) == 2
    texts = demo_texts()[:3] + input_first_texts()[:8] + ["it was", "review : good\n"]
    before = (model.tokens_forwarded, model.tokens_computed)
    check(model, reference, texts, MULTI)
    # Without reuse every multi-token word re-runs its text; with it, only the word's tokens.
    assert model.tokens_computed - before[1] < (model.tokens_forwarded - before[0]) / 2


def test_no_sharing_single_text_and_duplicates(model, reference: Reference) -> None:
    model.batch_size = 2
    texts = ["the movie was great", "a terrible film , an awful story .", "it was", "good"]
    before = (model.tokens_forwarded, model.tokens_computed)
    check(model, reference, texts, WORDS)
    # Only the BOS token is common: nothing worth sharing, everything runs as is.
    assert model.tokens_computed - before[1] == model.tokens_forwarded - before[0]
    check(model, reference, [demo_texts()[2]], MULTI)
    check(model, reference, ["it was"] * 3 + [demo_texts()[0]] * 2, MULTI)


def test_sharing_off_gives_the_same_numbers(tiny_causal_dir: Path) -> None:
    texts = demo_texts() + input_first_texts()
    model = load_model(str(tiny_causal_dir), batch_size=8)
    shared = model.score_labels(texts, MULTI)
    shared_computed = model.tokens_computed
    model.min_shared_tokens = 1 << 40
    before = (model.tokens_forwarded, model.tokens_computed)
    plain = model.score_labels(texts, MULTI)
    plain_computed = model.tokens_computed - before[1]
    # Unshared, a text's own row is still served by its longest multi-token word's row.
    assert shared_computed < plain_computed <= model.tokens_forwarded - before[0]
    np.testing.assert_allclose(shared, plain, atol=1e-5, rtol=0)
    model.min_shared_tokens = 0  # share every common prefix, however short
    np.testing.assert_allclose(model.score_labels(texts, MULTI), plain, atol=1e-5, rtol=0)
    model.cache_budget_tokens = 1  # caches in many small chunks
    model.batch_tokens = 1
    np.testing.assert_allclose(model.score_labels(texts, MULTI), plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("words", [WORDS, MULTI, ["zqxv", "great film"]])
def test_hidden_states_from_the_scoring_pass(model, words: list[str]) -> None:
    """One shared-prefix pass gives the label scores and the hidden state where the label word
    is read: the same numbers as scoring alone and as the plain hidden-state pass."""
    model.batch_size = 4
    texts = demo_texts() + input_first_texts()[:10] + ["it was", "it was"]
    scores, hidden = model.score_labels_and_hidden(texts, words)
    np.testing.assert_allclose(scores, model.score_labels(texts, words), atol=1e-5, rtol=0)
    assert hidden.shape == (len(texts), model._head.weight.shape[1]) and hidden.dtype == np.float32
    np.testing.assert_allclose(hidden, model.hidden_states(texts), atol=1e-4, rtol=0)
    before = model.tokens_computed
    model.score_labels_and_hidden(texts, words)
    computed = model.tokens_computed - before
    model.score_labels(texts, words)
    assert computed == model.tokens_computed - before - computed  # no pass of its own


def test_hidden_states_without_the_body_head_split(tiny_causal_dir: Path) -> None:
    model = load_model(str(tiny_causal_dir), batch_size=3)
    texts = demo_texts()[:3]
    scores, hidden = model.score_labels_and_hidden(texts, WORDS)
    model._body = model._fast = None  # only the full forward: two passes, the same numbers
    scores_full, hidden_full = model.score_labels_and_hidden(texts, WORDS)
    np.testing.assert_allclose(scores_full, scores, atol=1e-5, rtol=0)
    np.testing.assert_allclose(hidden_full, hidden, atol=1e-4, rtol=0)


def test_full_forward_path_shares_too(tiny_causal_dir: Path, reference: Reference) -> None:
    model = load_model(str(tiny_causal_dir), batch_size=3)
    model._body = model._fast = None  # the model's own forward (logits everywhere), with caches
    texts = demo_texts()[:3] + input_first_texts()[:6]
    before = (model.tokens_forwarded, model.tokens_computed)
    check(model, reference, texts, MULTI)
    assert model.tokens_computed - before[1] < model.tokens_forwarded - before[0]


def test_without_bos_and_with_truncation(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = build_tiny_causal(tmp_path_factory.mktemp("nobos_engine"), seed=5, bos=False)
    model = load_model(str(folder), batch_size=4)
    assert model.prefix_ids == [] and model._share
    texts = demo_texts()[:4] + input_first_texts()[:6]
    check(model, Reference(folder), texts, MULTI)
    # Texts longer than the context are cut from the left: the shared part is what remains.
    long = ["the movie was great . " * 60 + f"{x} It was" for x in INPUTS[:3]]
    tok = AutoTokenizer.from_pretrained(folder)
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    got = model.score_labels(long, ["positive", "zqxv"])
    longest = len(tok(" zqxv", add_special_tokens=False)["input_ids"])
    for i, text in enumerate(long):
        # The text keeps what fits with the longest word (less its last token).
        kept = tok(text)["input_ids"][-(model.max_length - longest + 1) :]
        for c, word in enumerate(["positive", "zqxv"]):
            w = tok(" " + word, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(hf(torch.tensor([kept + w])).logits[0].double(), -1)
            ref = sum(float(logp[len(kept) - 1 + j, w[j]]) for j in range(len(w)))
            assert got[i, c] == pytest.approx(ref, abs=1e-5)


def test_sliding_window_models_do_not_share(tiny_causal_dir: Path) -> None:
    model = load_model(str(tiny_causal_dir))
    assert model._share and model.engine.check_sharing()
    model.hf_model.config.sliding_window = 8
    try:
        assert not model.engine.check_sharing()
    finally:
        model.hf_model.config.sliding_window = None


# -- cost counters -------------------------------------------------------------------------------


def test_flop_counter(tiny_causal_dir: Path) -> None:
    model = load_model(str(tiny_causal_dir))
    per_token, per_pair, per_row = model._flop_rates
    body = sum(p.numel() for p in model.hf_model.model.layers.parameters())
    body += model.hf_model.model.norm.weight.numel()
    assert per_token == 2 * body
    assert per_pair == 4 * 2 * 32  # layers * heads * head_dim
    assert per_row == 2 * 32 * len(model.tokenizer)
    model.batch_size = 4
    default = model.min_shared_tokens
    model.min_shared_tokens = 1 << 40
    before = model.flops
    text = "the movie was great"
    model.score_labels([text], WORDS)
    n = len(model.tokenize(text)) + 1
    expected = per_token * n + per_pair * n * (n + 1) // 2 + per_row
    # The lean pass runs the last layer's output projection and MLP only on the head's row.
    last = model.hf_model.model.layers[-1]
    rest = (*last.mlp.parameters(), *last.self_attn.o_proj.parameters())
    skipped = 2 * sum(p.numel() for p in rest)
    assert model._fast is not None
    assert model.flops - before == expected - (n - 1) * skipped
    model._fast = None
    before = model.flops
    model.score_labels([text], WORDS)
    assert model.flops - before == expected
    model._fast = model.engine.check_fast()
    model.min_shared_tokens = default
    texts = demo_texts()
    before = model.flops
    model.score_labels(texts, WORDS)
    shared = model.flops - before
    model.min_shared_tokens = 1 << 40
    before = model.flops
    model.score_labels(texts, WORDS)
    assert shared < (model.flops - before) / 2
    model.min_shared_tokens = default


def test_threads_follow_physical_cores_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from promptscout.model import compute

    cores = physical_cores()
    assert cores >= 1
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores + 1)
    monkeypatch.setattr(compute, "_THREADS_SET", False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    configure_threads()
    assert calls == []  # the environment decides
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(compute, "_THREADS_SET", False)
    configure_threads()
    configure_threads()  # once per process
    assert calls == [cores]


# -- the prefix tree -----------------------------------------------------------------------------


def test_tree_shares_long_prefixes_and_folds_short_ones() -> None:
    head = list(range(100, 120))  # 20 shared tokens
    rows = [head + [1, 2], head + [3], head + [3, 4, 5], [7, 8], [7, 9]]
    picks = [[(len(r) - 1, 0, k, 0)] for k, r in enumerate(rows)]
    root = build_tree(rows, picks, min_shared=16)
    # [7] is shared by two rows but saves one token: folded into its children.
    assert sorted(len(c.tokens) for c in root.children) == [2, 2, 20]
    shared = next(c for c in root.children if len(c.tokens) == 20)
    assert shared.tokens == head and shared.start == 0 and not shared.picks
    # head + [3] is a row and the prefix of another: one node, its pick, one child -> folded.
    assert sorted((c.start, tuple(c.tokens)) for c in shared.children) == [
        (20, (1, 2)),
        (20, (3, 4, 5)),
    ]
    folded = next(c for c in shared.children if c.tokens[0] == 3)
    assert sorted(p[0] for p in folded.picks) == [20, 22]
    for node in iter_nodes(root):
        assert all(node.start <= p[0] < node.end for p in node.picks)
        assert node.parent is root or node.parent in iter_nodes(root)
    every = [p for node in iter_nodes(root) for p in node.picks]
    assert sorted(every) == sorted(p for ps in picks for p in ps)


def test_tree_without_sharing_and_with_duplicates() -> None:
    rows = [[1, 2, 3], [1, 2, 3], [1, 2, 4]]
    picks = [[(2, 0, 0, 0)], [(2, 0, 1, 0)], [(2, 0, 2, 0)]]
    root = build_tree(rows, picks, min_shared=1 << 62)
    assert [c.tokens for c in root.children] == [[1, 2, 3], [1, 2, 4]]
    assert len(root.children[0].picks) == 2  # equal rows run once
    root = build_tree(rows, picks, min_shared=1)
    assert [c.tokens for c in root.children] == [[1, 2]]
    assert [c.tokens for c in root.children[0].children] == [[3], [4]]
