"""Selection: the campaign's pick from its best candidates, on more evidence than the search
split; the default campaign a file without [[searchers]] runs."""

from __future__ import annotations

import numpy as np
import pytest

from promptscout.campaign import Campaign
from promptscout.campaign.default import describe
from promptscout.campaign.selection import VALIDATION_SPLIT, validation_ids
from promptscout.config import load_config
from promptscout.evaluation.racing import PairedComparison
from promptscout.leaderboard import build_leaderboard
from promptscout.objectives import Ranking, resolve_objective
from promptscout.store import Store
from promptscout.tasks import load_task

SELECTION = "\n[selection]\npool = 4\n"


def finished(config, **kwargs) -> Store:
    store = Store(config.store_path)
    campaign = Campaign(config, store, progress=False, **kwargs)
    try:
        campaign.run()
    finally:
        campaign.close()
    return store


def test_the_pool_is_validated_on_train_and_ranked_by_all_its_evidence(write_campaign):
    config = load_config(write_campaign(budget=240, extra=SELECTION))
    with finished(config) as store:
        records = store.meta.selection
        by_dev = build_leaderboard(store, ensembles=False, selection=False)
        board = build_leaderboard(store, ensembles=False)
        task = load_task(config.task.spec, label_words=config.task.label_words)
        comparison = PairedComparison(
            task,
            [resolve_objective(n) for n in config.objective.names],
            Ranking.from_dict(store.meta.ranking.to_dict()),
            0.0,
        )
        assert len(records) == 4
        assert [r["key"] for r in records] == [e.prompt.key for e in board[:4]]  # pick first
        assert {r["key"] for r in records} == {e.prompt.key for e in by_dev[:4]}
        for entry in board[:4]:
            record, prompt = entry.selection, entry.prompt
            ids = validation_ids(task, prompt)
            assert set(ids).isdisjoint(prompt.demos) and len(ids) == len(task.train) - len(
                set(prompt.demos)
            )
            validation = store.find_evaluation(prompt.key, VALIDATION_SPLIT, ids)
            dev = store.find_evaluation(prompt.key, "dev", store.meta.search_examples)
            terms = np.concatenate(
                [
                    comparison.per_example(prompt, dev, dev.example_ids),
                    comparison.per_example(prompt, validation, ids),
                ]
            )
            assert record["score"] == pytest.approx(terms.mean(), abs=1e-6)
            assert record["validation_examples"] == len(ids)
        scores = [r["score"] for r in records]
        assert scores == sorted(scores, reverse=True)
        # Every other candidate keeps its search-split order after the pool.
        rest = [e.prompt.key for e in board[4:]]
        assert rest == [e.prompt.key for e in by_dev if e.prompt.key in set(rest)]
        exported = store.meta.selection[0]["key"]
    with Store(config.store_path, readonly=True) as store:
        assert build_leaderboard(store)[0].prompt.key in (exported, store.meta.pick)


def test_prompts_shaped_by_train_labels_get_no_validation(write_campaign, tmp_path):
    config = load_config(write_campaign(budget=240, extra=SELECTION))

    def shaped(prompt, searcher):  # as if every candidate had been trained on train
        return True

    store = Store(config.store_path)
    campaign = Campaign(config, store, progress=False)
    campaign._shaped_by_train = shaped  # the campaign's own rule, replaced for this test
    try:
        campaign.run()
    finally:
        campaign.close()
    with store:
        assert all(r["validation_examples"] == 0 for r in store.meta.selection)
        assert not list(store.evaluations(VALIDATION_SPLIT))
        # On search-split evidence alone, selection keeps the search split's order (up to ties
        # in the ranking score, which the gold-class cross-entropy breaks).
        assert len(store.meta.selection) == 4


def test_pool_zero_ranks_by_the_search_split_alone(write_campaign):
    config = load_config(write_campaign(budget=240, extra="\n[selection]\npool = 0\n"))
    with finished(config) as store:
        assert store.meta.selection == [] and store.meta.pick is None
        assert not list(store.evaluations(VALIDATION_SPLIT))
        ranks = [e.prompt.key for e in build_leaderboard(store)]
        assert ranks == [e.prompt.key for e in build_leaderboard(store, selection=False)]


def test_a_file_without_searchers_runs_the_default_mix(tmp_path, tiny_causal_dir, tiny_task_dir):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[campaign]\nname = "d"\nstore = "{tmp_path / "d.db"}"\n'
        f'[model]\nname = "{tiny_causal_dir}"\n'
        f'[task]\npath = "{tiny_task_dir}"\nlabel_words = ["bad", "good"]\n'
        "[budget]\nexamples = 160\n",
        encoding="utf-8",
    )
    config = load_config(path)
    with finished(config) as store:
        stored = store.meta.config["searchers"]
        assert [s["type"] for s in stored] == ["manual", "bayesian", "peft"]
        assert stored[2]["options"]["method"] == "lora" and stored[2]["options"]["demos"] == 2
        assert stored[2]["options"]["members"] == 3  # a committee: the tiny train split is small
        assert stored[2]["options"]["cross_fit"] is True
        assert stored[1]["options"]["readouts"] == ["", "batch", "linear"]
        assert stored[0]["options"]["nearest_demos"] == [0, 2]
        assert stored[1]["options"]["nearest_demos"] == 2
        kinds = {e.kind for e in build_leaderboard(store)}
        assert kinds == {"prompt", "ensemble"}  # ensembles on by default in the default mix
        readouts = {(e.prompt.calibration, e.prompt.verbalizer) for e in build_leaderboard(store)
                    if e.kind == "prompt"}  # fmt: skip
        assert len(readouts) > 1  # candidates carry different readouts


def test_label_word_search_is_cross_fitted(tmp_path, tiny_causal_dir, tiny_task_dir):
    """The probe picks words with half of each class; a prompt using them is validated on the
    other half, a prompt with the campaign's own words on all of train."""
    from promptscout.searchers.label_search import probe_ids

    task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
    half = probe_ids(task, 7)
    assert half == probe_ids(task, 7) and half != probe_ids(task, 8)  # seeded
    for label in {e.label for e in task.train}:
        members = [e.id for e in task.train if e.label == label]
        assert len([i for i in members if i in half]) == (len(members) + 1) // 2
    path = tmp_path / "c.toml"
    path.write_text(
        f'[campaign]\nname = "w"\nstore = "{tmp_path / "w.db"}"\n'
        f'[model]\nname = "{tiny_causal_dir}"\n'
        f'[task]\npath = "{tiny_task_dir}"\nlabel_words = ["bad", "good"]\n'
        "[budget]\nexamples = 400\n[selection]\npool = 12\n"
        '[[searchers]]\ntype = "bayesian"\nlabel_word_search = 3\nmax_demos = 0\n'
        "n_startup_trials = 40\n",
        encoding="utf-8",
    )
    config = load_config(path)
    with finished(config) as store:
        prompts = {key: prompt for key, (prompt, _) in store.prompts().items()}
        records = {r["key"]: r for r in store.meta.selection}
        seen = {"proposed": 0, "given": 0}
        for key, record in records.items():
            prompt = prompts[key]
            proposed = any(w not in ("bad", "good") for w in prompt.label_words)
            read = prompt.metadata.get("train_read")
            assert "train_labels" not in prompt.metadata
            expected = [e.id for e in task.train if not proposed or e.id not in read]
            assert list(validation_ids(task, prompt)) == expected
            assert record["validation_examples"] == len(expected)
            if proposed:
                halves = [set(probe_ids(task, s)) for s in range(100)]
                assert set(read) in halves  # the searcher's own seeded half
            seen["proposed" if proposed else "given"] += 1
        assert seen["proposed"] and seen["given"]


def test_the_default_mix_leaves_out_what_the_model_or_evaluator_cannot_do(tiny_task_dir):
    from promptscout.campaign.default import default_searchers

    task = load_task(str(tiny_task_dir), label_words=["bad", "good"])
    local = {s.type: s.options for s in default_searchers(task)}
    assert local["bayesian"]["label_word_search"] == 3 and local["bayesian"]["nearest_demos"] == 2
    served = {s.type: s.options for s in default_searchers(task, served=True)}
    assert served["bayesian"]["label_word_search"] == 0
    assert "linear" not in served["manual"]["readouts"]
    ray = {s.type: s.options for s in default_searchers(task, ray=True)}
    assert ray["bayesian"]["label_word_search"] == 3 and "linear" in ray["manual"]["readouts"]
    for options in (*served.values(), *ray.values()):
        assert "nearest_demos" not in options
    # LoRA with demonstrations only where PEFT can train: an in-process causal LM.
    assert "peft" not in local and "peft" not in served
    causal = {s.type: s.options for s in default_searchers(task, causal=True)}
    lora = {"method": "lora", "demos": 2}
    # A small training split: a cross-fitted committee, three epochs, proposed once, each
    # member on one of the manual searcher's templates.
    committee = {"members": 3, "cross_fit": True, "epochs_per_ask": 3, "max_epochs": 3}
    committee |= {"template_choice": "per_member", "templates": local["manual"]["templates"]}
    assert len(task.train) <= 32 and causal["peft"] == {**lora, **committee}
    larger = load_task("sst-5")  # 80 training examples: one adapter's epoch is long already
    one = {**lora, "template": "Text: {text}\nLabel:"}
    assert {s.type: s.options for s in default_searchers(larger, causal=True)}["peft"] == one
    assert "peft" not in {s.type for s in default_searchers(task, served=True, causal=True)}
    line = describe(default_searchers(load_task("sst-2"), causal=True))
    assert 'method = "lora"' in line and "cross_fit = true" in line  # as TOML writes them
    assert 'peft (3 templates, method = "lora"' in line and '"per_member"' in line


def test_min_train_moves_dev_examples_where_every_searcher_and_selection_see_them(write_campaign):
    # 8 training and 8 dev examples; min_train = 12 moves 4 of dev into train: the search split
    # is the 4 left, and selection validates each prompt on all 12 training examples but its
    # demonstrations, the moved ones among them.
    path = write_campaign(budget=120, extra=SELECTION)
    words = 'label_words = ["bad", "good"]\n'
    path.write_text(path.read_text().replace(words, words + "min_train = 12\n"))
    config = load_config(path)
    task = config.task.load()
    moved = {e.id for e in task.train if e.id.startswith("dev-")}
    assert len(task.train) == 12 and len(moved) == 4 and len(task.dev) == 4
    with finished(config) as store:
        assert set(store.meta.search_examples) == {e.id for e in task.dev}
        assert store.meta.selection  # selection ran: every record is checked below
        assert all(set(s.evaluation.example_ids) <= {e.id for e in task.dev}
                   for s in store.evaluations("dev"))  # fmt: skip
        for record in store.meta.selection:
            prompt = store.prompt(record["key"])[0]
            ids = validation_ids(task, prompt)
            assert moved - set(prompt.demos) <= set(ids)
            assert record["validation_examples"] == len(ids) == 12 - len(set(prompt.demos))
    # a default mix on such a file says so in the line that names its searchers
    assert describe([], 12).endswith("; train grown to 12 examples from dev ([task] min_train)")
