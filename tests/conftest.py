"""Shared fixtures: tiny random language models and tokenizers, built on disk once per session.

Nothing here touches the network. The models are random (their predictions mean nothing) but
deterministic: the same seed always gives the same weights, so tests can compare numbers.

Fixtures (all session-scoped, reuse them freely):

- ``tiny_causal_dir``: a folder holding a 2-layer Llama causal LM (hidden size 32, context 256)
  and a byte-level BPE tokenizer that adds ``<s>`` (BOS) in front, like Llama tokenizers do.
  Special tokens: ``<pad>`` (0), ``<s>`` (1), ``</s>`` (2). Words of :data:`CORPUS` such as
  " great", " terrible", " positive", " negative", " good", " bad" are single tokens; made-up
  words (" zqxv") split into several.
- ``tiny_masked_dir``: a folder holding a 2-layer BERT masked LM and a lower-casing WordPiece
  tokenizer with ``[PAD] [UNK] [CLS] [SEP] [MASK]``. Corpus words are single tokens; other words
  split into ``##`` letter pieces (e.g. "zqxv" -> z ##q ##x ##v).
- ``tiny_causal`` / ``tiny_masked``: those folders loaded with
  :func:`promptscout.model.load_model` (a :class:`~promptscout.model.LanguageModel`).

To build a variant (another seed, no BOS), call :func:`build_tiny_causal` or
:func:`build_tiny_masked` on a ``tmp_path`` / ``tmp_path_factory`` folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# A small built-in English corpus: enough text for BPE merges that make the usual label words
# single tokens. Repeated so that every word is frequent.
CORPUS = [
    "the movie was great and the review was positive",
    "the movie was terrible and the review was negative",
    "it was a good movie , a great film , a wonderful story",
    "it was a bad movie , a terrible film , an awful story",
    "review : the acting is good . sentiment : positive",
    "review : the plot is bad . sentiment : negative",
    "this film is great ! i loved it . the sentiment is positive",
    "this film is terrible ! i hated it . the sentiment is negative",
    "question : is the review positive or negative ? answer : yes no",
    "a the an it is was of and to in on for with as by at from",
    "Review: Sentiment: Answer: Question: Text: Label: great terrible good bad",
]
CAUSAL_SPECIALS = ["<pad>", "<s>", "</s>"]
MASKED_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _words() -> list[str]:
    """The distinct lower-cased words of the corpus, in first-seen order."""
    seen: dict[str, None] = {}
    for line in CORPUS:
        for w in line.lower().replace(":", " : ").split():
            seen.setdefault(w, None)
    return list(seen)


def build_tiny_causal(path: Path, *, seed: int = 0, bos: bool = True) -> Path:
    """Save a tiny random Llama causal LM and its byte-level BPE tokenizer into ``path``.

    Args:
        path: the folder to create (parents are created too).
        seed: the torch seed for the random weights.
        bos: whether the tokenizer prepends ``<s>`` (Llama style); if False it adds nothing
            (SmolLM2 style).

    Returns:
        ``path``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=CAUSAL_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
        )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(hf_tok),
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return path


def build_tiny_masked(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny random BERT masked LM and its WordPiece tokenizer into ``path``.

    Args:
        path: the folder to create (parents are created too).
        seed: the torch seed for the random weights.

    Returns:
        ``path``.
    """
    import string

    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    # Whole corpus words, then single letters/digits and their "##" continuations so that any
    # other lower-case word splits into pieces instead of becoming [UNK].
    pieces = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab_list = MASKED_SPECIALS + _words() + pieces + ["##" + p for p in pieces]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )
    config = BertConfig(
        vocab_size=len(hf_tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=vocab["[PAD]"],
    )
    torch.manual_seed(seed)
    model = BertForMaskedLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random Llama causal LM (seed 0) and a BOS-adding BPE tokenizer."""
    return build_tiny_causal(tmp_path_factory.mktemp("tiny_causal"), seed=0)


@pytest.fixture(scope="session")
def tiny_masked_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random BERT masked LM (seed 0) and a WordPiece tokenizer."""
    return build_tiny_masked(tmp_path_factory.mktemp("tiny_masked"), seed=0)


@pytest.fixture(scope="session")
def tiny_causal(tiny_causal_dir: Path):
    """``load_model(str(tiny_causal_dir))``: a causal LanguageModel (float32, CPU, batch 16).

    Shared by the whole session: read ``tokens_forwarded`` as deltas, and don't mutate it.
    """
    from promptscout.model import load_model

    return load_model(str(tiny_causal_dir))


@pytest.fixture(scope="session")
def tiny_masked(tiny_masked_dir: Path):
    """``load_model(str(tiny_masked_dir))``: a masked LanguageModel (float32, CPU, batch 16)."""
    from promptscout.model import load_model

    return load_model(str(tiny_masked_dir))


# Campaign, store and CLI fixtures (tiny task folder, campaign files on the tiny model).
from campaign_fixtures import tiny_task_dir, write_campaign  # noqa: E402, F401

# Served-model fixtures (llama-cpp-python's server on the embedded model, a server answering 401).
from served_fixtures import llama_server, unauthorized_url  # noqa: E402, F401


@pytest.fixture
def offline_datasets(tmp_path_factory, monkeypatch):
    """``datasets`` with no hub and a private cache (tests that build datasets on disk)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    cache = tmp_path_factory.mktemp("hf_cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
