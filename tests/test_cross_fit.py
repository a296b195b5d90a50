"""The cross-fitted LoRA committee (``members`` with ``cross_fit``) on the tiny causal LM: each
member learns from the search examples outside its fold, the committee is one prompt scored
out of fold, it resumes exactly, and a campaign ranks, exports and re-reads it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from campaign_fixtures import evaluates_as_ranked, run_campaign
from test_peft import (
    PEFT,
    dev_evaluator,
    searcher_on,
    straight_and_resumed,
    train_to_the_end,
)

from promptscout.adapter_committee import (
    committee_bundle,
    committee_members,
    is_committee,
    read_folder,
    write_folder,
)
from promptscout.config import load_config
from promptscout.errors import PromptscoutError
from promptscout.evaluation.scoring import render_texts
from promptscout.leaderboard import build_leaderboard, describe
from promptscout.soft_tensors import tensors_digest
from promptscout.store import Store

OPTIONS = {"learning_rate": 0.05, "demos": 2, "members": 2, "cross_fit": True}


def log_softmax(x: np.ndarray) -> np.ndarray:
    return x - np.logaddexp.reduce(x, axis=1, keepdims=True)


def test_each_member_trains_on_train_and_the_other_folds_with_its_own_demonstrations(
    tiny_causal,
):
    searcher = searcher_on(tiny_causal, "lora", **{**OPTIONS, "members": 3})
    task = searcher.context.task
    folds = searcher.folds
    assert sorted(i for fold in folds for i in fold) == sorted(e.id for e in task.dev)
    # The pairs a plain committee's members show, all from the training examples.
    plain = searcher_on(tiny_causal, "lora", learning_rate=0.05, demos=2, members=3)
    pairs = [member.base.demos for member in plain.members]
    assert len(set(pairs)) == 3 and {i for p in pairs for i in p} <= {e.id for e in task.train}
    for member, fold, pair in zip(searcher.members, folds, pairs, strict=True):
        trained = [e.id for e in member.context.task.train]
        assert trained[: len(task.train)] == [e.id for e in task.train]
        assert set(trained[len(task.train) :]) == {e.id for e in task.dev} - set(fold)
        assert member.base.demos == pair  # trained with the pair it is scored with
    (proposal,) = searcher.propose(1)
    bundle = searcher.soft_tensors(proposal.soft)
    members = committee_members(bundle)
    assert is_committee(bundle) and proposal.demos == pairs[0]
    assert [m.held_out for m in members] == folds and [m.demos for m in members] == pairs
    assert proposal.metadata["cross_fit"] == 3 and proposal.metadata["epoch"] == 1


def test_a_search_example_is_scored_by_the_member_that_held_it_out_others_by_all(tiny_causal):
    searcher, bundles = searcher_on(tiny_causal, "lora", **OPTIONS), {}
    evaluator = dev_evaluator(tiny_causal, searcher, bundles)
    ((prompt, dev),) = train_to_the_end(searcher, evaluator, bundles, rounds=1)
    task = searcher.context.task
    members = committee_members(bundles[prompt.soft])
    (test,) = evaluator.evaluate([prompt], "test", [e.id for e in task.test[:6]])
    for evaluation in (dev, test):
        examples = [task.example(i) for i in evaluation.example_ids]
        each = []  # each member on its own texts: its own demonstrations
        for member in members:
            texts = render_texts(task, dataclasses.replace(prompt, demos=member.demos), examples)
            scores = tiny_causal.score_labels_soft(texts, prompt.label_words, member.adapter)
            each.append(log_softmax(scores))
        assert np.abs(each[0] - each[1]).max() > 1e-4  # the members differ
        for row, example in enumerate(examples):
            held = [j for j, m in enumerate(members) if example.id in m.held_out]
            scorers = held or [0, 1]
            expected = np.log(np.mean([np.exp(each[j][row]) for j in scorers], axis=0))
            np.testing.assert_allclose(evaluation.outputs[row], expected, atol=1e-5)
        kinds = [len([m for m in members if e.id in m.held_out]) for e in examples]
        assert set(kinds) == ({1} if evaluation is dev else {0})


def test_per_member_templates_travel_in_the_bundle_score_and_round_trip(tiny_causal, tmp_path):
    templates = ["{text} :", "Review: {text}\nIt was"]
    options = {**OPTIONS, "templates": templates, "template_choice": "per_member"}
    searcher, bundles = searcher_on(tiny_causal, "lora", **options), {}
    evaluator = dev_evaluator(tiny_causal, searcher, bundles)
    ((prompt, dev),) = train_to_the_end(searcher, evaluator, bundles, rounds=1)
    members = committee_members(bundles[prompt.soft])
    assert [m.template for m in members] == templates and prompt.template == templates[0]
    assert describe(prompt).startswith(
        f"<lora committee of 2 {prompt.soft[:8]}> {{text}} : / Review: {{text}}\\nIt was"
    )
    task = searcher.context.task
    for row, example_id in enumerate(dev.example_ids):
        (j,) = [j for j, m in enumerate(members) if example_id in m.held_out]
        own = dataclasses.replace(prompt, demos=members[j].demos, template=templates[j])
        (text,) = render_texts(task, own, [task.example(example_id)])
        scores = tiny_causal.score_labels_soft([text], prompt.label_words, members[j].adapter)
        np.testing.assert_allclose(dev.outputs[row], log_softmax(scores)[0], atol=1e-5)
    folder = write_folder(bundles[prompt.soft], tmp_path / "committee")
    listing = json.loads((folder / "committee.json").read_text())["members"]
    assert [m["template"] for m in listing] == templates
    assert tensors_digest(read_folder(folder)) == prompt.soft
    broken = dict(bundles[prompt.soft])
    broken["member1/template"] = np.frombuffer(b'""', dtype=np.uint8)
    with pytest.raises(PromptscoutError, match="member 1: its template"):
        committee_members(broken)


def test_a_resumed_cross_fitted_committee_trains_exactly_like_an_uninterrupted_one(tiny_causal):
    options = {**OPTIONS, "patience": 2, "max_epochs": 3}
    straight, resumed, evaluator, bundles = straight_and_resumed(tiny_causal, options)
    rest = [p.soft for p, _ in train_to_the_end(straight, evaluator, bundles)]
    assert rest and [p.soft for p, _ in train_to_the_end(resumed, evaluator, bundles)] == rest
    assert resumed.best == straight.best and straight.exhausted


def test_committee_bundles_are_checked_and_round_trip_through_a_folder(tiny_causal, tmp_path):
    searcher = searcher_on(tiny_causal, "lora", **OPTIONS)
    (proposal,) = searcher.propose(1)
    bundle = searcher.soft_tensors(proposal.soft)
    back = read_folder(write_folder(bundle, tmp_path / "committee"))
    assert tensors_digest(back) == proposal.soft
    assert (tmp_path / "committee" / "member-1" / "adapter_model.safetensors").exists()
    adapters = [m.adapter for m in committee_members(bundle)]
    with pytest.raises(PromptscoutError, match="2 or more"):
        committee_bundle(adapters[:1], [()], [()])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "committee.json").write_text('{"members": []}')
    with pytest.raises(PromptscoutError, match="2 or more"):
        read_folder(empty)
    broken = dict(bundle)
    broken["member1/held_out"] = np.frombuffer(b"[1, 2]", dtype=np.uint8)
    with pytest.raises(PromptscoutError, match="member 1: its held_out"):
        committee_members(broken)
    del broken["member1/held_out"]
    with pytest.raises(PromptscoutError, match="member 1: its held_out"):
        committee_members(broken)
    with pytest.raises(PromptscoutError, match="members 0..n-1"):
        committee_members({k: v for k, v in bundle.items() if not k.startswith("member0/")})


def test_a_campaign_ranks_the_committee_as_one_prompt_exports_and_evaluates_it(
    write_campaign, tmp_path, capsys
):
    extra = PEFT.replace("patience = 2\nmax_epochs = 3", "patience = 1\nmax_epochs = 2")
    extra += "members = 2\ncross_fit = true\n"
    config = load_config(write_campaign("cross_fit.toml", budget=2000, extra=extra))
    config.searchers = [s for s in config.searchers if s.type == "peft"]
    config.store = str(tmp_path / "cross_fit.db")
    run_campaign(config)
    with Store(config.store_path, readonly=True) as store:
        board = build_leaderboard(store)
        pick = board[0]
        assert pick.kind == "prompt" and pick.prompt.metadata["cross_fit"] == 2
        assert pick.test is not None
        assert not store.meta.ensembles or all(
            "committee" not in r for r in store.meta.ensembles
        )  # the committee is the prompt itself, no pooled row
        # Its search-split evaluation covers every search example.
        dev = store.find_evaluation(pick.prompt.key, "dev", store.meta.search_examples)
        assert dev is not None and dev.ok
    payload = json.loads(config.export_path.read_text())
    folder = config.export_path.parent / payload["adapters"]["folders"][pick.prompt.soft]
    assert (folder / "committee.json").exists() and (folder / "member-0").is_dir()
    evaluates_as_ranked(config.export_path, payload, pick, capsys)
