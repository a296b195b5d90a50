"""The writer searchers (ape, opro, reflect): valid prompts, guardrails with counted drops,
lineage notes, meta-prompt files, seeded determinism, and a campaign whose report draws the
family tree.

The proposer is either the tiny random model (real generation: junk, mostly dropped) or a
:class:`ScriptedProposer` that answers from a script, so that what the guardrails must keep and
drop is known exactly. Scoring always uses the tiny model.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from campaign_fixtures import campaign_text, run_campaign
from writer_fixtures import GOOD, ScriptedProposer, WriterCampaign

from promptscout.campaign.selection import validation_ids
from promptscout.cli import main
from promptscout.config import load_config
from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.evaluation.outcome import Outcome, Status
from promptscout.leaderboard import build_leaderboard
from promptscout.prompts import Prompt
from promptscout.report import write_report
from promptscout.searchers import SearchContext, create_searcher
from promptscout.searchers.writers.guardrails import (
    COPIES_META,
    NO_INPUT_FIELD,
    REPEATS_EARLIER,
    TOO_LONG,
    copies,
)
from promptscout.searchers.written_text import EMPTY, REPEATS_INPUT, UNUSABLE
from promptscout.store import Store
from promptscout.tasks import Example, Task, load_task


@pytest.fixture
def task(tiny_task_dir):
    return load_task(str(tiny_task_dir), label_words=["bad", "good"])


def context(task, proposer, model=None, seed=0) -> SearchContext:
    scorer = (lambda: model) if model is not None else None
    return SearchContext(task, ("bad", "good"), seed=seed, model_provider=scorer,
                         proposer_provider=lambda: proposer)  # fmt: skip


def outcome(prompt: Prompt, score: float, correct: Sequence[str], task) -> Outcome:
    """A complete outcome on all of dev, right exactly on the ``correct`` ids."""
    ids = tuple(e.id for e in task.dev)
    outputs = [
        [0.0, -1.0] if (e.label == 0) == (e.id in correct) else [-1.0, 0.0] for e in task.dev
    ]
    evaluation = Evaluation(prompt.key, "dev", ids, outputs, {"accuracy": score})
    return Outcome(prompt, evaluation, Status.COMPLETE, 1.0, score)


def test_ape_writes_valid_prompts_with_lineage(task):
    proposer = ScriptedProposer([*GOOD, "Vary the first way of it.", "Vary the second way.",
                                 *GOOD[:2]])  # fmt: skip
    searcher = create_searcher(
        "ape", {"rounds": 2, "writes_per_round": 2, "samples_per_write": 2,
                "templates": ["Review: {text}\nSentiment:", "{text} It was"]},
        context(task, proposer),
    )  # fmt: skip
    start = searcher.ask(10)
    assert [p.instruction for p in start] == ["", ""]  # the starting pool: "" x 2 templates
    searcher.tell([outcome(p, 0.5, [], task) for p in start])
    written = searcher.ask(10)
    assert [p.instruction for p in written] == [g for g in GOOD for _ in range(2)]
    for prompt in written:
        prompt.check_task(task)
        assert prompt.metadata["operator"] == "ape"
        assert len(prompt.metadata["train_read"]) == len(task.train) // 2
    # The meta-prompt shows training demonstrations, input then label word, only readable ones.
    read = set(written[0].metadata["train_read"])
    shown = [e for e in task.train if e.fields["text"] in proposer.read[0]]
    assert shown and {e.id for e in shown} <= read
    assert "Output: good" in proposer.read[0] or "Output: bad" in proposer.read[0]
    # Round 2 resamples around the best, naming its parent and keeping its template.
    best = written[3]
    searcher.tell([outcome(p, 0.9 if p is best else 0.6, [], task) for p in written])
    resampled = searcher.ask(10)
    assert [p.instruction for p in resampled] == [
        "Vary the first way of it.",
        "Vary the second way.",
    ]
    assert all(p.metadata["operator"] == "ape-resample" for p in resampled)
    assert all(p.metadata["parents"] == [best.key] for p in resampled)
    assert all(p.template == best.template for p in resampled)
    assert searcher.ask(10) == [] and searcher.exhausted
    notes = searcher.notes()["writing"]
    assert notes["calls"] == 4 and notes["writes"] == 8 and notes["kept"] == 6
    # The second resample (of GOOD[0]) wrote its parent back, then another earlier proposal.
    assert notes["dropped"] == {REPEATS_INPUT: 1, REPEATS_EARLIER: 1}


def test_junk_is_dropped_with_counts_per_reason(task):
    demo_input = task.train[0].fields["text"]
    junk = [
        "",  # empty
        "\n\n",  # empty
        "positive",  # cut off with no full sentence: unusable
        "Use {text} as input.",  # template syntax in an instruction: unusable
        "Good.",  # too short: unusable
        demo_input,  # repeats an input it was shown
        "Write the instruction they were given, in one sentence.",  # the meta-prompt's words
        "Classify the review as good or bad, and think about every word of it very carefully.",
        "Decide whether the review is good or bad.",
        "Decide whether the review is good or bad!",  # repeats the previous one
    ]
    searcher = create_searcher(
        "ape", {"rounds": 1, "samples_per_write": 1,
                "max_prompt_tokens": 12, "read_examples": 4, "demos_per_write": 4,
                "writes_per_round": 10},
        context(task, ScriptedProposer(junk)),
    )  # fmt: skip
    searcher.tell([outcome(p, 0.5, [], task) for p in searcher.ask(10)])
    kept = searcher.ask(10)
    assert [p.instruction for p in kept] == ["Decide whether the review is good or bad."]
    dropped = searcher.notes()["writing"]["dropped"]
    assert dropped == {EMPTY: 2, UNUSABLE: 3, REPEATS_INPUT: 1, COPIES_META: 1, TOO_LONG: 1,
                       REPEATS_EARLIER: 1}  # fmt: skip
    assert searcher.notes()["writing"]["proposals"] == 10


def test_opro_shows_scores_worst_to_best_and_writes_templates(task):
    proposer = ScriptedProposer(["Answer: good or bad.", "Review: {text} The review is", ""])
    searcher = create_searcher(
        "opro", {"target": "template", "writes_per_round": 3, "samples_per_write": 1,
                 "instructions": [""], "rounds": 1,
                 "templates": ["Review: {text}\nSentiment:", "{text} It was"]},
        context(task, proposer),
    )  # fmt: skip
    start = searcher.ask(10)
    searcher.tell([outcome(p, s, [], task) for p, s in zip(start, [0.75, 0.5], strict=True)])
    written = searcher.ask(10)
    assert [p.template for p in written] == ["Review: {text} The review is"]
    assert written[0].instruction == ""
    assert written[0].metadata["parents"] == [start[0].key, start[1].key]  # best first
    meta = proposer.read[0]
    assert meta.index("Score: 50") < meta.index("Score: 75")  # worst to best
    assert searcher.notes()["writing"]["dropped"] == {NO_INPUT_FIELD: 1, EMPTY: 1}


def test_opro_drops_the_weakest_history_to_fit_the_context(task):
    proposer = ScriptedProposer(GOOD)
    proposer.max_length = 150  # words: the meta-prompt holds about two history entries
    searcher = create_searcher(
        "opro", {"instructions": ["", *[f"Instruction number {i} is here." for i in range(6)]],
                 "writes_per_round": 1, "samples_per_write": 1, "rounds": 1, "history": 8},
        context(task, proposer),
    )  # fmt: skip
    start = searcher.ask(10)
    searcher.tell([outcome(p, i / 10, [], task) for i, p in enumerate(start)])
    written = searcher.ask(10)
    meta = proposer.read[0]
    assert "Instruction number 5" in meta and "(no instruction)" not in meta  # weakest went
    assert len(proposer.read[0].split()) + 48 <= 150
    assert written[0].metadata["parents"][0] == start[-1].key


def test_reflect_diagnoses_training_mistakes_and_merges(task, tiny_causal):
    proposer = ScriptedProposer(
        ["It ignores the negative words.", "Look for negative words before deciding.",
         "Decide from the tone of the review.", "Merged: judge the tone and the words."]
    )  # fmt: skip
    searcher = create_searcher(
        "reflect", {"instructions": ["", "Judge the review."], "writes_per_round": 2,
                    "samples_per_write": 1, "rounds": 1, "merge_every": 2, "minibatch": 4,
                    "read_examples": 4, "templates": ["Review: {text}\nSentiment:"]},
        context(task, proposer, tiny_causal),
    )  # fmt: skip
    start = searcher.ask(10)
    dev = [e.id for e in task.dev]
    # Each starting prompt wins examples the other loses: both are on the Pareto front.
    searcher.tell([outcome(start[0], 0.5, dev[:4], task), outcome(start[1], 0.5, dev[4:], task)])
    written = searcher.ask(10)
    diagnose = next(text for text in proposer.read if "wrongly" in text)
    readable = {e.id for e in searcher.read}
    assert "Correct output:" in diagnose and "The assistant answered:" in diagnose
    assert all(e.fields["text"] not in diagnose for e in task.dev)  # dev texts never shown
    assert all(e.fields["text"] not in diagnose for e in task.train if e.id not in readable)
    operators = [p.metadata["operator"] for p in written]
    assert operators[-1] == "merge" and set(written[-1].metadata["parents"]) == {
        start[0].key, start[1].key}  # fmt: skip
    if "reflect" in operators:  # the tiny model got some minibatch example wrong
        child = written[0]
        assert child.metadata["feedback"] == "It ignores the negative words."
        assert child.instruction == "Look for negative words before deciding."
        assert len(child.metadata["parents"]) == 1
    assert searcher.notes()["writing"]["feedback_examples"] >= 4


def test_same_seed_same_proposals_with_real_sampling(task, tiny_causal):
    def proposals(seed):
        searcher = create_searcher(
            "ape",
            {"rounds": 1, "writes_per_round": 2, "samples_per_write": 3},
            context(task, tiny_causal, tiny_causal, seed=seed),
        )
        searcher.tell([outcome(p, 0.5, [], task) for p in searcher.ask(10)])
        searcher.ask(10)
        notes = searcher.notes()["writing"]
        return searcher.writer.cache, {k: v for k, v in notes.items() if k != "seconds"}

    first, again = proposals(1), proposals(1)
    assert first == again and first[1]["writes"] == 6
    answers = [a for batch in first[0].values() for a in batch]
    assert len(set(answers)) > 1  # sampled: different draws


def test_generate_samples_by_seed(tiny_causal):
    texts = ["the movie was"] * 3
    a = tiny_causal.generate(texts, 8, temperature=1.0, seed=5)
    assert a == tiny_causal.generate(texts, 8, temperature=1.0, seed=5)
    assert len(set(a)) > 1 and a != tiny_causal.generate(texts, 8, temperature=1.0, seed=6)
    greedy = tiny_causal.generate(texts, 8)
    assert len(set(greedy)) == 1


def test_meta_prompt_files(task, tmp_path):
    own = tmp_path / "mine.txt"
    own.write_text("### write\nShow: {demos}\nInstruction:\n### resample\nAgain: {instruction}\n")
    proposer = ScriptedProposer(GOOD)
    searcher = create_searcher("ape", {"meta_prompt": str(own), "rounds": 1},
                               context(task, proposer))  # fmt: skip
    searcher.tell([outcome(p, 0.5, [], task) for p in searcher.ask(10)])
    searcher.ask(10)
    assert proposer.read[0].startswith("Show: Input:")
    own.write_text("### write\nShow: {demos} {oops}\n### resample\n{instruction}\n")
    with pytest.raises(PromptscoutError, match=r"mine.txt: section '### write' holds \{oops\}"):
        create_searcher("ape", {"meta_prompt": str(own)}, context(task, proposer))
    own.write_text("### write\nShow: {demos}\n")
    with pytest.raises(PromptscoutError, match="no '### resample' section"):
        create_searcher("ape", {"meta_prompt": str(own)}, context(task, proposer))
    with pytest.raises(PromptscoutError, match="meta-prompt file .*missing.txt"):
        create_searcher("ape", {"meta_prompt": str(tmp_path / "missing.txt")},
                        context(task, proposer))  # fmt: skip


def test_copies_and_selection_leaves_read_examples_out(task):
    assert copies(
        "Write the instruction they were given.", "Write the instruction they were given."
    )
    assert not copies("Judge the tone.", "Write the instruction they were given.")
    prompt = Prompt("{text}", ("bad", "good"), demos=(task.train[0].id,),
                    metadata={"train_read": [task.train[1].id, task.train[2].id]})  # fmt: skip
    assert validation_ids(task, prompt) == tuple(e.id for e in task.train[3:])


def run_writers(folder: Path, model_dir: Path, task_dir: Path, searchers: str, proposer,
                budget: int) -> Path:  # fmt: skip
    """Run the tiny campaign with ``searchers`` (TOML) writing with ``proposer``; its store."""
    text = campaign_text(model_dir, task_dir, folder / "w.db", budget=budget)
    path = folder / "w.toml"
    path.write_text(text[: text.index("[[searchers]]")] + searchers, encoding="utf-8")
    config = load_config(path)
    run_campaign(config, functools.partial(WriterCampaign, proposer=proposer))
    return config.store_path


def test_mixed_campaign_ranks_written_prompts_and_reports_lineage(
    tmp_path, tiny_causal_dir, tiny_task_dir
):
    searchers = (
        '[[searchers]]\ntype = "reflect"\ninstructions = ["", "Judge the review."]\n'
        'templates = ["Review: {text}\\nSentiment:"]\nrounds = 2\nwrites_per_round = 2\n'
        "samples_per_write = 1\nminibatch = 4\nmerge_every = 0\n"
        '\n[[searchers]]\ntype = "manual"\ntemplates = ["{text} It was"]\n'
    )
    answers = [f"Diagnosis {i}: the instruction ignores the tone." if i % 2 == 0
               else f"Judge the tone of the review, step {i}." for i in range(40)]  # fmt: skip
    path = run_writers(tmp_path, tiny_causal_dir, tiny_task_dir, searchers,
                       ScriptedProposer(answers), budget=400)  # fmt: skip
    with Store(path, readonly=True) as store:
        entries = build_leaderboard(store)
        assert {"reflect", "manual"} <= {e.searcher for e in entries}
        children = [e for e in entries if e.searcher == "reflect" and e.to_dict()["parents"]]
        assert children, "the reflect searcher wrote no scored child"
        report = write_report(store, tmp_path / "w.html").read_text(encoding="utf-8")
    assert "Lineage of written prompts" in report and "feedback:" in report
    assert "the instruction ignores the tone" in report


def test_leaderboard_json_has_parent_keys(tmp_path, tiny_causal_dir, tiny_task_dir, capsys):
    searchers = (
        '[[searchers]]\ntype = "opro"\ninstructions = ["", "Judge the review."]\nrounds = 1\n'
        "writes_per_round = 2\nsamples_per_write = 1\n"
    )
    path = run_writers(tmp_path, tiny_causal_dir, tiny_task_dir, searchers,
                       ScriptedProposer(GOOD), budget=300)  # fmt: skip
    capsys.readouterr()
    assert main(["leaderboard", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["entries"]
    written = [r for r in rows if r["prompt"].get("instruction") in GOOD[:2]]
    assert written and all(len(r["parents"]) == 2 for r in written)
    keys = {r["key"] for r in rows}
    assert all(set(r["parents"]) <= keys for r in written)


def test_bad_writer_options_are_one_line(task):
    proposer = ScriptedProposer([])
    with pytest.raises(PromptscoutError, match="'temperature' must be at least 0"):
        create_searcher("ape", {"temperature": -1}, context(task, proposer))
    with pytest.raises(PromptscoutError, match="'target' must be one of instruction, template"):
        create_searcher("opro", {"target": "both"}, context(task, proposer))


def test_example_campaign_builds_its_searchers():
    config = load_config(Path(__file__).parents[1] / "examples" / "sst2-writers.toml")
    task = load_task("sst-2")
    built = [
        create_searcher(spec.type, spec.options, context(task, ScriptedProposer([])))
        for spec in config.searchers
    ]
    assert [s.type_name for s in built] == ["bayesian", "evolutionary", "reflect"]
    start = built[2].ask(10)  # the reflect writer's starting pool: its two instructions
    assert [p.instruction for p in start] == [
        "",
        "Classify the sentiment of the movie review as positive or negative.",
    ]


def test_writers_refuse_generation_tasks():
    def examples(split):
        return tuple(Example(f"{split}-{i}", {"text": f"say {i}"}, str(i)) for i in range(4))

    generation = Task(
        "gen", "generation", (), (), ("text",), examples("train"), examples("dev"), ()
    )
    for writer in ("ape", "opro", "reflect"):
        with pytest.raises(PromptscoutError, match="writes instructions for classification"):
            create_searcher(writer, {}, SearchContext(generation, (), 0,
                                                      proposer_provider=lambda: None))  # fmt: skip
