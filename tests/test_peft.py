"""The PEFT searcher (prompt tuning, prefix tuning, P-tuning, LoRA) on the tiny causal LM: its
adapters score exactly as PEFT reloads them, train, resume, export and are refused clearly."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from campaign_fixtures import evaluates_as_ranked, outcomes, run_campaign

from promptscout.adapters import (
    CONFIG,
    adapter_bundle,
    adapter_config,
    check_adapter,
    read_folder,
    write_folder,
)
from promptscout.cli import main
from promptscout.config import load_config
from promptscout.errors import PromptscoutError
from promptscout.evaluation.local import LocalEvaluator
from promptscout.evaluation.neighbours import Neighbours
from promptscout.evaluation.scoring import render_texts
from promptscout.leaderboard import build_leaderboard, describe
from promptscout.objectives import resolve_objective
from promptscout.objectives.classification import gold_cross_entropy
from promptscout.searchers import SearchContext, create_searcher
from promptscout.searchers.parametric.training import quiet_peft
from promptscout.soft_tensors import tensors_digest
from promptscout.store import Store
from promptscout.tasks import load_task

METHODS = {
    "prompt_tuning": {"virtual_tokens": 3},
    "p_tuning": {"virtual_tokens": 3, "encoder_hidden_size": 16},
    "prefix_tuning": {"virtual_tokens": 3},
    "lora": {"rank": 4},
}
TEXTS = ["a great movie", "bad film , boring plot and a very long text here", ""]
WORDS = ["bad", "good", "very good"]  # a multi-token word too


def searcher_on(model, method: str, **options):
    task = load_task("sst-2")
    context = SearchContext(task, task.label_words, 0, model_provider=lambda: model)
    template = {} if "templates" in options else {"template": "{text} :"}
    settings = {"method": method, **template, **METHODS[method], **options}
    return create_searcher("peft", settings, context)


def peft_scores(model, folder, texts, words, shift: int) -> np.ndarray:
    """Class log-probabilities by PEFT's own forward of the reloaded folder, one row at a time
    (the reference: what `PeftModel.from_pretrained(base, folder)` computes)."""
    from peft import PeftModel

    with quiet_peft():
        net = PeftModel.from_pretrained(copy.deepcopy(model.hf_model), str(folder)).eval()
    rows, picks = model._label_rows(list(texts), list(words), reserve=shift)
    out = np.zeros((len(texts), len(words)))
    with torch.no_grad():
        for row, row_picks in zip(rows, picks, strict=True):
            with quiet_peft():
                logits = net(input_ids=torch.tensor([row])).logits[0]
            logp = torch.log_softmax(logits.float(), dim=-1)
            for pos, token, i, c in row_picks:
                out[i, c] += float(logp[pos + shift, token])
    return out


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_scores_exactly_as_peft_reloads_it(tiny_causal, tmp_path, method):
    searcher = searcher_on(tiny_causal, method, learning_rate=0.05)
    (prompt,) = searcher.ask(1)
    bundle = searcher.soft_tensors(prompt.soft)
    assert tensors_digest(bundle) == prompt.soft and adapter_config(bundle)["inference_mode"]
    texts = [t + " :" for t in TEXTS]
    base = tiny_causal.score_labels(texts, WORDS)
    ours = tiny_causal.score_labels_soft(texts, WORDS, bundle)
    folder = write_folder(bundle, tmp_path / method)
    assert tensors_digest(read_folder(folder)) == prompt.soft  # the folder is the whole adapter
    shift = 3 if method in ("prompt_tuning", "p_tuning") else 0  # PEFT's logits cover them
    reference = peft_scores(tiny_causal, folder, texts, WORDS, shift)
    np.testing.assert_allclose(ours, reference, atol=2e-5)
    assert np.abs(ours - base).max() > 1e-3  # the adapter does something
    # The shared model is untouched (LoRA merges into a copy).
    np.testing.assert_array_equal(tiny_causal.score_labels(texts, WORDS), base)
    assert describe(prompt).startswith(f"<{method} {prompt.soft[:8]}>")


@pytest.mark.parametrize("method", ["prompt_tuning", "lora"])
def test_training_lowers_the_training_loss(tiny_causal, method):
    searcher = searcher_on(tiny_causal, method, learning_rate=0.05, epochs_per_ask=4)
    searcher.ask(1)
    assert len(searcher.losses) == 4 and searcher.losses[-1] < searcher.losses[0]


@pytest.mark.parametrize(
    "shown",
    [{"dropout": 0.1}, {"demos": 2, "resample_demos": True}],  # their randomness is seeded too
)
def test_a_resumed_searcher_trains_exactly_like_an_uninterrupted_one(tiny_causal, shown):
    options = {"learning_rate": 0.05, **shown}
    straight = searcher_on(tiny_causal, "lora", **options)
    straight.ask(1)
    (expected,) = straight.ask(1)
    first = searcher_on(tiny_causal, "lora", **options)
    first.ask(1)
    saved = json.loads(json.dumps(first.state()))  # what the store keeps after the round
    resumed = searcher_on(tiny_causal, "lora", **options)
    resumed.load_state(saved)
    (got,) = resumed.ask(1)
    assert got.soft == expected.soft and resumed.losses == straight.losses


@pytest.mark.parametrize("shown", [{"demos": 2}, {"nearest_demos": 2}])
def test_training_shows_the_demonstrations_scoring_shows_and_proposals_carry_them(
    tiny_causal, shown
):
    searcher = searcher_on(tiny_causal, "lora", learning_rate=0.05, **shown)
    (prompt,) = searcher.ask(1)
    base = searcher.base
    assert (prompt.demos, prompt.nearest_demos) == (base.demos, base.nearest_demos)
    task = searcher.context.task
    train, texts = list(task.train), searcher.training_texts()
    if "demos" in shown:
        assert len(prompt.demos) == 2
        assert {task.example(i).label for i in prompt.demos} == {0, 1}  # class-balanced
        scored = render_texts(task, prompt, train)  # what scoring shows each example
        for example, text, shows in zip(train, texts, scored, strict=True):
            # the same, except that a training example never sees itself as a demonstration
            others = [task.example(i) for i in prompt.demos if i != example.id]
            assert text == prompt.render(example, others)
            assert (text == shows) == (example.id not in prompt.demos)
    else:
        assert prompt.nearest_demos == 2 and not prompt.demos
        neighbours = Neighbours(task, tiny_causal.embed)  # as the local evaluator picks them
        assert texts == render_texts(task, prompt, train, neighbours=neighbours)
    bare = searcher_on(tiny_causal, "lora").training_texts()
    assert all(len(t) > len(b) for t, b in zip(texts, bare, strict=True))


def test_resampled_demonstrations_are_drawn_afresh_each_epoch_balanced_and_never_the_example(
    tiny_causal,
):
    searcher = searcher_on(tiny_causal, "lora", learning_rate=0.05, demos=2, resample_demos=True)
    task, base = searcher.context.task, searcher.base
    first, second = searcher.epoch_texts(0), searcher.epoch_texts(1)
    assert first == searcher.epoch_texts(0) and first != second  # seeded by the epoch
    train = list(task.train)
    by_label = {label: [e for e in train if e.label == label] for label in (0, 1)}
    shown = set()
    for example, text in zip(train, first, strict=True):
        # one demonstration of each class, in class order, neither of them the example itself
        pairs = [
            (a.id, b.id)
            for a in by_label[0]
            for b in by_label[1]
            if example.id not in (a.id, b.id) and base.render(example, [a, b]) == text
        ]
        assert len(pairs) == 1
        shown.add(pairs[0])
    assert len(shown) > len(train) // 2  # drawn per example, not one pair for all
    (prompt,) = searcher.ask(1)
    assert searcher.trainer.texts == first  # epoch 0 trained on them
    assert prompt.demos == base.demos and len(prompt.demos) == 2  # scoring shows the fixed pair
    assert searcher_on(tiny_causal, "lora", demos=2).epoch_texts(0) is None


def test_templates_train_the_candidate_whose_training_loss_starts_lowest(tiny_causal):
    templates = ["{text} :", "Review: {text} It was", "{text}\nAnswer:"]
    searcher = searcher_on(tiny_causal, "lora", learning_rate=0.05, demos=2, templates=templates)
    assert not searcher.template_chosen
    searcher.check()  # the choice is made when the trainer is built, before anything trains
    task = searcher.context.task
    gold = [int(e.label) for e in task.train]
    losses = []
    for template in templates:  # the untrained model's loss on each, as training renders it
        texts = searcher.training_texts(dataclasses.replace(searcher.base, template=template))
        scores = tiny_causal.score_labels(texts, task.label_words)
        losses.append(float(gold_cross_entropy(scores, gold).mean()))
    assert len(set(np.round(losses, 6))) == 3  # they differ: the choice means something
    chosen = templates[int(np.argmin(losses))]
    assert searcher.base.template == chosen
    (prompt,) = searcher.ask(1)
    assert prompt.template == chosen and searcher.trainer.texts == searcher.training_texts()
    # A resumed searcher trains the chosen template without scoring the candidates again.
    saved = json.loads(json.dumps(searcher.state()))
    resumed = searcher_on(tiny_causal, "lora", learning_rate=0.05, demos=2, templates=templates)
    resumed.load_state(saved)
    before = tiny_causal.tokens_forwarded
    (again,) = resumed.ask(1)
    assert again.template == chosen and tiny_causal.tokens_forwarded == before


def test_label_mass_trains_the_template_after_which_the_label_words_are_likeliest(tiny_causal):
    templates = ["{text} :", "Review: {text} It was", "{text}\nAnswer:"]
    options = {"demos": 2, "templates": templates, "template_choice": "label_mass"}
    searcher = searcher_on(tiny_causal, "lora", **options)
    searcher.check()
    task = searcher.context.task
    masses = []
    for template in templates:  # zero-shot: the template alone, no demonstrations
        texts = [template.replace("{text}", e.fields["text"]) for e in task.train]
        scores = tiny_causal.score_labels(texts, task.label_words)
        masses.append(float(np.log(np.exp(scores).sum(axis=1)).mean()))
    assert len(set(np.round(masses, 6))) == 3
    chosen = templates[int(np.argmax(masses))]
    assert searcher.base.template == chosen and len(searcher.base.demos) == 2
    # The gold labels do not enter it: the same texts with other labels choose the same.
    flipped = dataclasses.replace(
        task, train=tuple(dataclasses.replace(e, label=1 - e.label) for e in task.train)
    )
    context = dataclasses.replace(searcher.context, task=flipped)
    other = create_searcher("peft", {"method": "lora", "rank": 4, **options}, context)
    other.check()
    assert other.base.template == chosen
    (prompt,) = searcher.ask(1)
    assert prompt.template == chosen and prompt.demos == searcher.base.demos


def test_options_are_checked():
    task = load_task("sst-2")
    context = SearchContext(task, task.label_words, 0)
    for options, message in [
        ({"method": "adapter"}, "method"),
        ({"method": "lora", "rank": 0}, "rank"),
        ({"method": "lora", "alpha": 0.0}, "alpha"),
        ({"method": "lora", "dropout": 1.0}, "dropout"),
        ({"method": "prompt_tuning", "rank": 4}, "rank.*lora only"),
        ({"method": "lora", "virtual_tokens": 5}, "virtual_tokens"),
        ({"method": "prefix_tuning", "dropout": 0.1}, "dropout"),
        ({"method": "p_tuning", "init": "zeros"}, "init"),
        ({"method": "lora", "demos": -1}, "demos"),
        ({"method": "lora", "demos": 2, "nearest_demos": 2}, "not both"),
        ({"method": "lora", "resample_demos": True}, "resample_demos.*needs demos"),
        ({"method": "lora", "template": "{text} x", "templates": ["{text}"]}, "templates.*one"),
        ({"method": "lora", "templates": ["{text}", "{title} :"]}, "title"),
        ({"method": "lora", "templates": ["{text}"], "template_choice": "best"}, "loss, label"),
        ({"method": "lora", "template_choice": "label_mass"}, "template_choice.*needs templates"),
        ({"method": "lora", "cross_fit": True}, "cross_fit.*members = 2"),
        ({"method": "lora", "template_choice": "per_member"}, "template_choice.*needs templates"),
        (
            {"method": "lora", "templates": ["{text}"], "template_choice": "per_member"},
            "per_member.*members = 2",
        ),
        ({"method": "lora", "cross_fit": True, "members": 2, "nearest_demos": 2}, "use demos"),
    ]:
        with pytest.raises(PromptscoutError, match=message):
            create_searcher("peft", options, context)


def test_modules_that_match_nothing_and_masked_models_are_refused_before_training(
    tiny_causal, tiny_masked
):
    searcher = searcher_on(tiny_causal, "lora", target_modules=["no_such_proj"])
    with pytest.raises(PromptscoutError, match="no_such_proj"):
        searcher.ask(1)
    assert searcher.losses == []
    masked = searcher_on(tiny_masked, "prefix_tuning")
    with pytest.raises(PromptscoutError, match="causal LM"):
        masked.ask(1)


def test_bundles_are_checked_and_their_digest_covers_the_config():
    weights = {"prompt_embeddings": np.ones((2, 4), np.float32)}
    bundle = adapter_bundle({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2}, weights)
    other = adapter_bundle({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 3}, weights)
    assert tensors_digest(bundle) != tensors_digest(other)
    with pytest.raises(PromptscoutError, match="peft_type"):
        adapter_bundle({"peft_type": "IA3"}, weights)
    with pytest.raises(PromptscoutError, match="not finite"):
        adapter_bundle({"peft_type": "LORA"}, {"w": np.full((2,), np.nan, np.float32)})
    with pytest.raises(PromptscoutError, match="only its config"):
        check_adapter({**bundle, "prefix": np.zeros((2, 4), np.float32)})
    with pytest.raises(PromptscoutError, match="not JSON"):
        check_adapter({**bundle, CONFIG: np.frombuffer(b"{oops", np.uint8)})


PEFT = """
[[searchers]]
type = "peft"
method = "lora"
rank = 4
learning_rate = 0.05
patience = 2
max_epochs = 3
demos = 2
"""


def test_campaign_ranks_adapters_exports_folders_and_evaluate_reads_them(
    write_campaign, tmp_path, capsys
):
    config = load_config(write_campaign("peft.toml", budget=400, extra=PEFT))
    config.searchers = [s for s in config.searchers if s.type != "random"]
    config.objective.names = ["cross_entropy", "accuracy"]
    config.store = str(tmp_path / "peft.db")
    config.leaderboard.top_k = 8
    run_campaign(config)
    with Store(config.store_path, readonly=True) as store:
        everything = build_leaderboard(store)
        board = [e for e in everything if e.kind == "prompt"]
        adapters = [e for e in board if e.prompt.soft]
        # Ensembles pool adapters with discrete prompts, from their stored outputs.
        mixed = [
            e
            for e in everything
            if e.kind == "ensemble"
            and {bool(m.soft) for m in e.prompt.members} == {True, False}
            and e.test is not None
        ]
        assert mixed
        assert adapters and any(not e.prompt.soft for e in board)  # beside the manual prompts
        entry = next(e for e in adapters if e.test is not None)
        assert len(entry.prompt.demos) == 2  # the demonstrations it was trained with
    export = config.export_path
    payload = json.loads(export.read_text())
    folder = export.parent / payload["adapters"]["folders"][entry.prompt.soft]
    assert (folder / "adapter_config.json").exists()
    assert (folder / "adapter_model.safetensors").exists()
    assert "PeftModel.from_pretrained" in payload["adapters"]["load"]

    argv = evaluates_as_ranked(export, payload, entry, capsys)  # demonstrations included

    (folder / "adapter_model.safetensors").unlink()  # the adapter is gone: one clear line
    assert main(argv) == 2
    assert "adapter folder" in capsys.readouterr().err


def test_the_lora_copy_takes_adapters_in_turn_and_restores_exactly(tiny_causal):
    searcher = searcher_on(tiny_causal, "lora", learning_rate=0.05)
    first = searcher.soft_tensors(searcher.ask(1)[0].soft)
    second = searcher.soft_tensors(searcher.ask(1)[0].soft)
    texts = [t + " :" for t in TEXTS]
    a = tiny_causal.score_labels_soft(texts, WORDS, first)
    b = tiny_causal.score_labels_soft(texts, WORDS, second)
    assert np.abs(a - b).max() > 0
    np.testing.assert_array_equal(tiny_causal.score_labels_soft(texts, WORDS, first), a)
    with pytest.raises(PromptscoutError, match="does not fit"):
        config = adapter_config(first)
        stray = {"base_model.model.model.nothing.lora_A.weight": np.ones((4, 32), np.float32)}
        stray["base_model.model.model.nothing.lora_B.weight"] = np.ones((32, 4), np.float32)
        tiny_causal.score_labels_soft(texts, WORDS, adapter_bundle(config, stray))
    # After a failed load the copy takes the next adapter from the base weights again.
    np.testing.assert_array_equal(tiny_causal.score_labels_soft(texts, WORDS, second), b)


def test_a_module_list_that_matches_nothing_is_one_error_line_before_anything_runs(
    write_campaign, tmp_path, capsys
):
    extra = PEFT.replace("rank = 4", 'rank = 4\ntarget_modules = ["no_such_proj"]')
    path = write_campaign("bad.toml", budget=400, extra=extra)
    assert main(["run", str(path), "--store", str(tmp_path / "bad.db")]) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "bad.toml:" in line and "[[searchers]] peft" in line and "no_such_proj" in line
    assert not (tmp_path / "bad.db").exists()  # refused before the campaign stored anything


def train_to_the_end(searcher, evaluator, bundles, rounds=None):
    """Drive ``searcher`` as a campaign would, scoring each proposal on dev, for ``rounds``
    asks (None: until it is exhausted); returns the (prompt, evaluation) pairs in order."""
    scored = []
    while not searcher.exhausted and rounds != 0:
        asked = searcher.propose(1)
        if not asked:
            break
        for prompt in asked:
            bundles[prompt.soft] = searcher.soft_tensors(prompt.soft)
        evaluations = evaluator.evaluate(asked, "dev")
        searcher.tell(outcomes(searcher, zip(asked, evaluations, strict=True)))
        scored += list(zip(asked, evaluations, strict=True))
        rounds = None if rounds is None else rounds - 1
    return scored


def dev_evaluator(model, searcher, bundles):
    objectives = [resolve_objective("cross_entropy"), resolve_objective("accuracy")]
    return LocalEvaluator(model, searcher.context.task, objectives, soft_resolver=bundles.get)


def test_members_train_side_by_side_with_their_own_demonstrations_and_form_a_committee(
    tiny_causal,
):
    options = {"learning_rate": 0.05, "demos": 2, "patience": 1, "max_epochs": 2}
    searcher, bundles = searcher_on(tiny_causal, "lora", members=3, **options), {}
    evaluator = dev_evaluator(tiny_causal, searcher, bundles)
    task = searcher.context.task
    scored = train_to_the_end(searcher, evaluator, bundles, rounds=1)
    assert [p.metadata["member"] for p, _ in scored] == [0, 1, 2]  # one adapter each per ask
    scored += train_to_the_end(searcher, evaluator, bundles)
    assert searcher.exhausted and searcher.propose(1) == []
    by_member = {m: [(p, e) for p, e in scored if p.metadata["member"] == m] for m in range(3)}
    assert all(len(pairs) == 2 for pairs in by_member.values())  # max_epochs each
    # The first member is the adapter members = 1 trains; the others show their own pairs.
    single, own = searcher_on(tiny_causal, "lora", **options), {}
    alone = train_to_the_end(single, dev_evaluator(tiny_causal, single, own), own)
    alone = [p.soft for p, _ in alone]
    assert [p.soft for p, _ in by_member[0]] == alone
    pairs = [by_member[m][0][0].demos for m in range(3)]
    assert len(set(pairs)) == 3
    assert all(sorted(task.example(i).label for i in pair) == [0, 1] for pair in pairs)
    # The committee: each member's proposal with the lowest dev cross-entropy.
    best = [min(by_member[m], key=lambda pe: pe[1].objectives["cross_entropy"]) for m in range(3)]
    assert searcher.committee() == [p.key for p, _ in best]


def test_per_member_templates_train_each_member_on_its_own_pattern(tiny_causal):
    templates = ["{text} :", "Review: {text}\nIt was", "{text} All in all,"]
    options = {"learning_rate": 0.05, "demos": 2, "patience": 1, "max_epochs": 1}
    per_member = {"members": 4, "templates": templates, "template_choice": "per_member"}
    searcher, bundles = searcher_on(tiny_causal, "lora", **per_member, **options), {}
    # Cycling: the fourth member trains the first template again.
    assert [m.base.template for m in searcher.members] == [*templates, templates[0]]
    scored = train_to_the_end(searcher, dev_evaluator(tiny_causal, searcher, bundles), bundles)
    assert [p.template for p, _ in scored] == [*templates, templates[0]]
    # Each member is the adapter a one-template committee's member of the same seed trains.
    same, own = searcher_on(tiny_causal, "lora", members=2, template=templates[1], **options), {}
    alone = train_to_the_end(same, dev_evaluator(tiny_causal, same, own), own)
    assert scored[1][0].soft == [p.soft for p, _ in alone if p.metadata["member"] == 1][0]


def straight_and_resumed(model, options):
    """A LoRA searcher after one round, another restored from its state as the store keeps it
    after that round, the dev evaluator and the bundles proposed so far."""
    straight, bundles = searcher_on(model, "lora", **options), {}
    evaluator = dev_evaluator(model, straight, bundles)
    train_to_the_end(straight, evaluator, bundles, rounds=1)
    resumed = searcher_on(model, "lora", **options)
    resumed.load_state(json.loads(json.dumps(straight.state())))
    return straight, resumed, evaluator, bundles


def test_a_resumed_committee_trains_exactly_like_an_uninterrupted_one(tiny_causal):
    options = {"learning_rate": 0.05, "demos": 2, "patience": 2, "max_epochs": 3, "members": 2}
    straight, resumed, evaluator, bundles = straight_and_resumed(tiny_causal, options)
    assert resumed.committee() == straight.committee() and len(straight.committee()) == 2
    rest = [p.soft for p, _ in train_to_the_end(straight, evaluator, bundles)]
    assert [p.soft for p, _ in train_to_the_end(resumed, evaluator, bundles)] == rest
    assert resumed.committee() == straight.committee()


PEFT_COMMITTEE = PEFT.replace("patience = 2\nmax_epochs = 3", "patience = 1\nmax_epochs = 2")
PEFT_COMMITTEE += "members = 2\n"


def test_a_committee_is_pooled_rescored_and_picked_in_place_of_its_member(
    write_campaign, tmp_path, capsys
):
    config = load_config(write_campaign("committee.toml", budget=2000, extra=PEFT_COMMITTEE))
    config.searchers = [s for s in config.searchers if s.type == "peft"]  # ranked first, surely
    config.store = str(tmp_path / "committee.db")
    run_campaign(config)
    assert "committee of 2 trained members" in capsys.readouterr().err
    with Store(config.store_path, readonly=True) as store:
        board = build_leaderboard(store)
        pick = board[0]
        assert pick.kind == "ensemble" and pick.prompt.method == "average"
        members = pick.prompt.members
        assert [m.metadata["member"] for m in members] == [0, 1]
        assert pick.test is not None  # its members were re-scored on the held-out split
        meta = store.meta
        record = next(r for r in meta.ensembles if r["key"] == meta.pick)
        assert record["committee"] == "peft"
        # Its dev row is the mean of the members' class probabilities.
        dev = [store.find_evaluation(m.key, "dev", meta.search_examples) for m in members]
        probs = np.mean([np.exp(np.asarray(e.outputs)) for e in dev], axis=0)
        task = config.task.load()
        gold = [int(task.example(i).label) for i in dev[0].example_ids]
        accuracy = float(np.mean(probs.argmax(1) == np.asarray(gold)))
        assert pick.dev["accuracy"] == pytest.approx(accuracy)
    payload = json.loads(config.export_path.read_text())
    assert payload["entries"][0]["key"] == pick.prompt.key
    assert set(payload["adapters"]["folders"]) >= {m.soft for m in members}
