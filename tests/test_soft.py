"""Soft prompts: prompt identity, scoring with learned vectors, training, the store, export and
`evaluate --prompt`, and a killed campaign resuming (the shared suite is in test_searchers.py)."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import numpy as np
import pytest
import torch
from campaign_fixtures import evaluates_as_ranked, outcomes, run_campaign

from promptscout.cli import main
from promptscout.config import load_config
from promptscout.errors import PromptscoutError
from promptscout.evaluation.local import LocalEvaluator
from promptscout.leaderboard import build_leaderboard, describe
from promptscout.model.soft_input import score_soft
from promptscout.objectives import resolve_objective
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, create_searcher
from promptscout.searchers.prompt_tuning.training import (
    SoftTrainer,
    final_norm_weights,
    nearest_tokens,
)
from promptscout.searchers.virtual_tokens import init_prefix
from promptscout.soft_tensors import (
    decode_tensors,
    encode_tensors,
    export_tensor_path,
    load_export_tensors,
    tensors_digest,
)
from promptscout.store import Store
from promptscout.tasks import load_task

TEXTS = ["the movie was great", "a bad film", "", "i hated it . the plot is bad"]
WORDS = ["bad", "good", "zqxv"]  # "zqxv" takes several tokens


def prefix(model, n: int, seed: int = 0) -> np.ndarray:
    return init_prefix(model, n, "random", "", seed)


# -- prompt identity ------------------------------------------------------------------------


def test_a_prompt_without_vectors_keeps_its_key_and_json():
    prompt = Prompt("Review: {text}\nSentiment:", ("negative", "positive"), instruction="Hi.")
    before = {  # the identity as it was before soft prompts existed
        "template": prompt.template,
        "label_words": ["negative", "positive"],
        "instruction": "Hi.",
        "demos": [],
        "triggers": [],
        "separator": "\n\n",
    }
    payload = json.dumps(before, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert prompt.key == hashlib.sha256(payload).hexdigest()[:16]
    assert "soft" not in prompt.to_dict()
    assert Prompt.from_dict(before) == prompt

    soft = Prompt(prompt.template, prompt.label_words, instruction="Hi.", soft="ab12")
    assert soft.key != prompt.key and soft.to_dict()["soft"] == "ab12"
    assert Prompt.from_dict(json.loads(json.dumps(soft.to_dict()))) == soft
    with pytest.raises(PromptscoutError, match="soft"):
        Prompt("{text}", soft="not hex!")


def test_tensor_bundles_round_trip_and_digests_see_every_bit():
    tensors = {"prefix": np.arange(12, dtype=np.float32).reshape(3, 4)}
    back = decode_tensors(encode_tensors(tensors))
    assert np.array_equal(back["prefix"], tensors["prefix"])
    assert tensors_digest(back) == tensors_digest(tensors)
    nudged = {"prefix": tensors["prefix"].copy()}
    nudged["prefix"][0, 0] = np.nextafter(np.float32(0), np.float32(1))
    assert tensors_digest(nudged) != tensors_digest(tensors)
    with_norm = {**tensors, "final_norm": np.ones(4, np.float32)}
    assert tensors_digest(with_norm) != tensors_digest(tensors)
    with pytest.raises(PromptscoutError, match="final_norm"):
        tensors_digest({**tensors, "final_norm": np.ones(5, np.float32)})
    with pytest.raises(PromptscoutError, match="prefix"):
        tensors_digest({"vectors": tensors["prefix"]})


# -- scoring --------------------------------------------------------------------------------


def test_no_vectors_scores_exactly_like_the_plain_path(tiny_causal):
    empty = {"prefix": np.zeros((0, 32), np.float32)}
    got = score_soft(tiny_causal, TEXTS, WORDS, empty)
    np.testing.assert_allclose(got, tiny_causal.score_labels(TEXTS, WORDS), atol=1e-5)
    # The final norm's own weights change nothing either.
    same = {**empty, "final_norm": final_norm_weights(tiny_causal)}
    np.testing.assert_allclose(score_soft(tiny_causal, TEXTS, WORDS, same), got, atol=1e-6)


def reference(model, texts, words, vectors: np.ndarray) -> np.ndarray:
    """One unpadded full forward per (text, word): BOS, vectors, text, word tokens."""
    embed = model.hf_model.get_input_embeddings()
    out = np.zeros((len(texts), len(words)))
    with torch.no_grad():
        for i, text in enumerate(texts):
            for c, word in enumerate(words):
                ids = model.prefix_ids + model.tokenize(text)
                cont = model.tokenize((" " if text else " ") + word)
                rows = embed(torch.tensor([ids + cont]))[0]
                lead = len(model.prefix_ids)
                x = torch.cat([rows[:lead], torch.from_numpy(vectors), rows[lead:]]).unsqueeze(0)
                logp = torch.log_softmax(model.hf_model(inputs_embeds=x).logits[0].float(), -1)
                start = lead + len(vectors) + len(ids) - lead - 1
                out[i, c] = sum(float(logp[start + j, t]) for j, t in enumerate(cont))
    return out


def test_vectors_go_after_bos_and_before_the_text(tiny_causal):
    vectors = prefix(tiny_causal, 3)
    got = score_soft(tiny_causal, TEXTS, WORDS, {"prefix": vectors})
    np.testing.assert_allclose(got, reference(tiny_causal, TEXTS, WORDS, vectors), atol=1e-4)
    assert not np.allclose(got, tiny_causal.score_labels(TEXTS, WORDS), atol=1e-3)
    # Batching (length-sorted, right-padded) does not change a row.
    alone = score_soft(tiny_causal, TEXTS[3:], WORDS, {"prefix": vectors})
    np.testing.assert_allclose(got[3:], alone, atol=1e-5)


def test_a_vector_of_the_wrong_width_is_a_clear_error(tiny_causal):
    with pytest.raises(PromptscoutError, match="hidden size 32"):
        score_soft(tiny_causal, TEXTS, WORDS, {"prefix": np.zeros((2, 8), np.float32)})


def test_masked_models_refuse_soft_prompts(tiny_masked):
    with pytest.raises(PromptscoutError, match="causal"):
        tiny_masked.score_labels_soft(TEXTS, WORDS, {"prefix": np.zeros((1, 32), np.float32)})


# -- training -------------------------------------------------------------------------------


@pytest.mark.parametrize("parametric", [False, True])
def test_training_lowers_the_training_loss(tiny_causal, parametric):
    # A random model tells the texts apart barely; with 3:1 labels a prompt that moves the bias
    # toward "good" lowers the loss (from about 0.64 toward the labels' entropy, 0.56).
    texts = ["the movie was great", "a bad film", "i loved it", "i hated it"] * 2
    labels = [1, 1, 1, 0] * 2
    trainer = SoftTrainer(tiny_causal, texts, labels, ["bad", "good"], lr=0.03, l2=0.0, batch=4)
    start = {"prefix": init_prefix(tiny_causal, 4, "text", "review : sentiment", 0)}
    if parametric:
        start["final_norm"] = final_norm_weights(tiny_causal)
    tensors, adam = dict(start), {"step": 0, "m": {}, "v": {}}
    before = trainer.mean_loss(tensors)
    weights = [p.detach().clone() for p in tiny_causal.hf_model.parameters()]
    for epoch in range(15):
        order = list(np.random.default_rng(epoch).permutation(len(texts)))
        tensors, adam, _ = trainer.epoch(tensors, start, adam, order)
    assert trainer.mean_loss(tensors) < before - 0.025
    assert adam["step"] == 30 and set(tensors) == set(start)
    # The model itself never moves and gets no gradients.
    for p, w in zip(tiny_causal.hf_model.parameters(), weights, strict=True):
        assert torch.equal(p, w) and p.grad is None


def test_l2_keeps_the_vectors_near_where_they_started(tiny_causal):
    texts, labels = ["the movie was great", "a bad film"], [1, 0]
    start = {"prefix": init_prefix(tiny_causal, 4, "vocab", "", 0)}

    def distance(l2: float) -> float:
        trainer = SoftTrainer(tiny_causal, texts, labels, ["bad", "good"], lr=0.1, l2=l2, batch=2)
        tensors, adam = dict(start), {"step": 0, "m": {}, "v": {}}
        for _ in range(10):
            tensors, adam, _ = trainer.epoch(tensors, start, adam, [0, 1])
        return float(np.linalg.norm(tensors["prefix"] - start["prefix"]))

    assert distance(50.0) < distance(0.0)


def test_initialisation_and_projection(tiny_causal):
    text = init_prefix(tiny_causal, 6, "text", "the movie was great", 0)
    ids, decoded = nearest_tokens(tiny_causal, text)
    assert decoded.startswith("the movie was great")  # its own tokens come back
    assert ids[:4] == tiny_causal.tokenize("the movie was great")[:4]
    assert np.array_equal(
        init_prefix(tiny_causal, 6, "vocab", "", 3), init_prefix(tiny_causal, 6, "vocab", "", 3)
    )
    assert init_prefix(tiny_causal, 5, "random", "", 0).shape == (5, 32)
    with pytest.raises(PromptscoutError, match="init"):
        init_prefix(tiny_causal, 2, "zeros", "", 0)


# -- the searcher ---------------------------------------------------------------------------


def searcher_on(model, task_name: str = "sst-2", **options):
    task = load_task(task_name)
    context = SearchContext(task, task.label_words, 0, model_provider=lambda: model)
    return create_searcher("soft", {"vectors": 4, **options}, context)


def test_options_are_checked():
    task = load_task("sst-2")
    context = SearchContext(task, task.label_words, 0)
    for options, message in [
        ({"vectors": 0}, "vectors"),
        ({"init": "zeros"}, "init"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"parametric": "lora"}, "parametric"),
        ({"template": "no field"}, "placeholder"),
    ]:
        with pytest.raises(PromptscoutError, match=message):
            create_searcher("soft", options, context)


def test_searcher_offers_its_tensors_and_stops_early(tiny_causal):
    searcher = searcher_on(tiny_causal, patience=2, project=True)
    prompts = searcher.ask(2)
    soft, projected = prompts
    tensors = searcher.soft_tensors(soft.soft)
    assert tensors_digest(tensors) == soft.soft and tensors["prefix"].shape == (4, 32)
    assert projected.soft == "" and projected.template.endswith("{text}")
    assert soft.metadata["epoch"] == 1 and describe(soft).startswith("<soft 4 vec ")
    dev = searcher.context.task.dev

    def told(prompt, outputs):
        ids = tuple(e.id for e in dev)
        from promptscout.evaluation.base import Evaluation

        return (prompt, Evaluation(prompt.key, "dev", ids, outputs, {"accuracy": 0.5}, len(ids)))

    gold = np.array([e.label for e in dev])
    good = np.where(np.eye(2)[gold] > 0, -0.1, -3.0).tolist()
    searcher.tell(outcomes(searcher, [told(soft, good), told(projected, good)]))
    assert searcher.best["digest"] == soft.soft and searcher.stale == 0
    for _ in range(2):  # worse on dev: patience runs out
        (prompt,) = searcher.ask(1)
        searcher.tell(outcomes(searcher, [told(prompt, np.zeros((len(dev), 2)).tolist())]))
    assert searcher.exhausted and searcher.ask(1) == []
    assert searcher.best["digest"] == soft.soft


# -- store, evaluator, export, evaluate --------------------------------------------------------


def test_store_keeps_tensors_and_old_stores_still_open(tmp_path, tiny_causal):
    tensors = {"prefix": prefix(tiny_causal, 2), "final_norm": np.ones(32, np.float32)}
    digest = tensors_digest(tensors)
    with Store(tmp_path / "a.db") as store:
        assert store.get_soft(digest) is None and not store.has_soft(digest)
        store.put_soft(digest, tensors)
        store.put_soft(digest, tensors)  # idempotent
        with pytest.raises(PromptscoutError, match="digest"):
            store.put_soft("0" * 32, tensors)
    with Store(tmp_path / "a.db", readonly=True) as store:
        back = store.get_soft(digest)
        assert all(np.array_equal(back[k], tensors[k]) for k in tensors)
    # A store made before soft prompts (no table) reads as "no tensors", and learns the table.
    with Store(tmp_path / "old.db") as store:
        store._db.execute("DROP TABLE IF EXISTS soft_tensors")
    with Store(tmp_path / "old.db", readonly=True) as store:
        assert store.get_soft(digest) is None
    with Store(tmp_path / "old.db") as store:
        store.put_soft(digest, tensors)
        assert store.has_soft(digest)
    count = sqlite3.connect(tmp_path / "old.db").execute("SELECT COUNT(*) FROM soft_tensors")
    assert count.fetchone() == (1,)


def test_evaluator_scores_soft_prompts_and_fails_unknown_ones(tiny_causal, tiny_task_dir):
    task = load_task(str(tiny_task_dir), label_words=("bad", "good"))
    objectives = [resolve_objective("accuracy")]
    tensors = {"prefix": prefix(tiny_causal, 3)}
    digest = tensors_digest(tensors)
    soft = Prompt("{text}", ("bad", "good"), soft=digest)
    plain = Prompt("{text}", ("bad", "good"))
    evaluator = LocalEvaluator(tiny_causal, task, objectives, soft_resolver={digest: tensors}.get)
    got = {e.prompt_key: e for e in evaluator.iter_evaluate([soft, plain], "dev")}
    texts = [e.fields["text"] for e in task.dev]
    np.testing.assert_allclose(
        got[soft.key].outputs, score_soft(tiny_causal, texts, ["bad", "good"], tensors), atol=1e-9
    )
    np.testing.assert_allclose(
        got[plain.key].outputs, tiny_causal.score_labels(texts, ["bad", "good"]), atol=1e-9
    )
    assert got[soft.key].prompt_tokens == got[plain.key].prompt_tokens + 3
    unknown = Prompt("{text}", ("bad", "good"), soft="ab" * 16)
    (failed,) = LocalEvaluator(tiny_causal, task, objectives).evaluate([unknown], "dev")
    assert failed.error and "not available" in failed.error


SOFT = """
[[searchers]]
type = "soft"
vectors = 3
init_text = "review : sentiment"
learning_rate = 0.1
patience = 2
max_epochs = 4
"""


def soft_config(write_campaign, tmp_path, name: str, budget: int = 400):
    config = load_config(write_campaign(f"{name}.toml", budget=budget, extra=SOFT))
    config.searchers = [s for s in config.searchers if s.type != "random"]
    config.objective.names = ["cross_entropy", "accuracy"]
    config.store = str(tmp_path / f"{name}.db")
    config.leaderboard.top_k = 8
    return config


def test_campaign_exports_soft_prompts_and_evaluate_loads_them(write_campaign, tmp_path, capsys):
    config = soft_config(write_campaign, tmp_path, "export")
    run_campaign(config)
    with Store(config.store_path, readonly=True) as store:
        board = [e for e in build_leaderboard(store) if e.kind == "prompt"]  # ensembles aside
        softs = [e for e in board if e.prompt.soft]
        assert softs and all(store.has_soft(e.prompt.soft) for e in softs)
        assert any(not e.prompt.soft for e in board)  # beside the manual prompts
        entry = next(e for e in softs if e.test is not None)
    export = config.export_path
    payload = json.loads(export.read_text())
    assert payload["soft_tensors"] == export_tensor_path(export).name
    resolve = load_export_tensors(export, payload)
    assert all(resolve(e.prompt.soft) is not None for e in softs)

    argv = evaluates_as_ranked(export, payload, entry, capsys)

    export_tensor_path(export).unlink()  # the vectors are gone: a clear error, no traceback
    assert main(argv) == 2
    assert "soft-prompt tensors" in capsys.readouterr().err
