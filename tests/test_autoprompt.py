"""The AutoPrompt searcher and its white-box model code (promptscout.model.gradients), on the tiny
random Llama and BERT models; the shared searcher suite is in test_searchers.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from campaign_fixtures import (
    outcomes,
    write_tiny_task,
)
from conftest import build_tiny_causal

from promptscout.config import load_config
from promptscout.errors import PromptscoutError
from promptscout.model import load_model
from promptscout.prompts import Prompt
from promptscout.searchers import SearchContext, create_searcher
from promptscout.searchers.autoprompt import TriggerTemplate, label_loss
from promptscout.searchers.autoprompt.gradients import (
    hotflip_scores,
    label_rows,
    special_token_ids,
    trigger_gradient,
    triggers_intact,
)
from promptscout.searchers.autoprompt.labels import class_margins, pick_label_words, train_probe
from promptscout.tasks import Example, load_task

WORDS = ("bad", "good")
CAUSAL = "{text} [T][T][T]"
MASKED = "{text} [T] [T] [T] [P] ."


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """Two classes, 8 short train and dev examples each (see campaign_fixtures)."""
    return load_task(str(write_tiny_task(tmp_path_factory.mktemp("task"))), label_words=WORDS)


def model_for(kind, tiny_causal, tiny_masked):
    return tiny_causal if kind == "causal" else tiny_masked


def searcher(task, model, seed=0, **options):
    context = SearchContext(task, WORDS, seed, model_provider=lambda: model)
    return create_searcher("autoprompt", options, context)


def token(model, text: str) -> int:
    (only,) = model.tokenize(text)
    return only


def rendered(task, model, template: str, tokens: list[int], split: str = "train"):
    """Texts, trigger spans and gold labels of a split with ``tokens`` in the slots."""
    s = searcher(task, model, template=template)
    s._model()
    examples = task.split(split)
    texts, spans = s._render(examples, tokens)
    return texts, spans, [e.label for e in examples]


# -- promptscout.model.gradients ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["causal", "masked"])
@pytest.mark.parametrize("loss", ["label", "class"])
def test_gradient_pass_scores_what_score_labels_scores(kind, loss, task, tiny_causal, tiny_masked):
    model = model_for(kind, tiny_causal, tiny_masked)
    template = CAUSAL if kind == "causal" else MASKED
    tokens = [token(model, " the"), token(model, " movie"), token(model, " was")]
    texts, spans, gold = rendered(task, model, template, tokens)
    rows = label_rows(model, texts, spans, tokens, ["bad", "terrible zqxv"])  # multi-token word
    assert rows.kept == list(range(len(texts)))
    value, grad = trigger_gradient(model, rows, gold, tokens, loss=loss, batch=3)
    expected = label_loss(model.score_labels(texts, ["bad", "terrible zqxv"]), gold, loss)
    assert value == pytest.approx(expected, abs=1e-4)
    assert grad.shape == (3, model.input_embeddings().shape[1]) and np.abs(grad).sum() > 0


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_gradient_matches_finite_differences(kind, task, tiny_causal, tiny_masked):
    model = model_for(kind, tiny_causal, tiny_masked)
    template = CAUSAL if kind == "causal" else MASKED
    tokens = [token(model, " the"), token(model, " movie"), token(model, " was")]
    texts, spans, gold = rendered(task, model, template, tokens)
    rows = label_rows(model, texts, spans, tokens, WORDS)
    _, grad = trigger_gradient(model, rows, gold, tokens)
    base = model.input_embeddings().detach()[tokens].double().numpy()
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = rng.normal(size=base.shape)
        direction /= np.linalg.norm(direction)
        eps = 1e-2
        up, _ = trigger_gradient(model, rows, gold, tokens, embeddings=base + eps * direction)
        down, _ = trigger_gradient(model, rows, gold, tokens, embeddings=base - eps * direction)
        numeric = (up - down) / (2 * eps)
        assert numeric == pytest.approx(float((grad * direction).sum()), rel=2e-2, abs=2e-4)


def test_gradient_equals_autograd_through_the_token_ids(task, tiny_causal):
    # The plain forward from input ids, its gradient read at the embedding layer's output and
    # summed over the trigger positions, must give the same per-slot gradient.
    model = tiny_causal
    tokens = [token(model, " the"), token(model, " movie"), token(model, " was")]
    texts, spans, gold = rendered(task, model, CAUSAL, tokens)
    rows = label_rows(model, texts, spans, tokens, WORDS)
    value, grad = trigger_gradient(model, rows, gold, tokens, batch=2)
    expected = np.zeros_like(grad)
    total = 0.0
    words = [token(model, " bad"), token(model, " good")]
    captured: list[torch.Tensor] = []

    def keep(_module, _inputs, out):
        out.retain_grad()
        captured.append(out)

    for r, row in enumerate(rows.rows):
        captured.clear()
        handle = model.hf_model.get_input_embeddings().register_forward_hook(keep)
        try:
            logits = model.hf_model(input_ids=torch.tensor([row])).logits[0, -1]
        finally:
            handle.remove()
        loss = -torch.log_softmax(logits, -1)[words[gold[rows.kept[r]]]]
        loss.backward()
        total += float(loss.detach())
        for slot, pos in enumerate(rows.triggers[r]):
            expected[slot] += captured[0].grad[0, pos].double().numpy()
    model.hf_model.zero_grad(set_to_none=True)
    n = len(rows.kept)
    assert value == pytest.approx(total / n, abs=1e-5)
    np.testing.assert_allclose(grad, expected / n, rtol=1e-4, atol=1e-7)
    scores = hotflip_scores(model, grad[1])
    weights = model.input_embeddings().detach().double().numpy()
    np.testing.assert_allclose(scores, -(weights @ grad[1]), rtol=1e-4, atol=1e-6)


def test_render_filter_needs_each_trigger_to_be_its_own_token(tiny_causal):
    great = token(tiny_causal, " great")
    # The slot's leading space is in the frame: the token " great" still reads as itself.
    assert triggers_intact(tiny_causal, ["a great movie"], [[(2, 7)]], [great]) == [True]
    assert triggers_intact(tiny_causal, ["a  great movie"], [[(2, 8)]], [great]) == [True]
    # Merged with the text before it, or a different token than intended: not intact.
    assert triggers_intact(tiny_causal, ["agreat movie"], [[(1, 6)]], [great]) == [False]
    s = token(tiny_causal, " s")  # merges with the text after it into " sentiment"
    assert triggers_intact(tiny_causal, ["the sentiment"], [[(3, 5)]], [s]) == [False]
    assert triggers_intact(tiny_causal, ["a good movie"], [[(1, 6)]], [great]) == [False]


def test_trigger_template_spans_and_slot_texts():
    template = TriggerTemplate("{text} [T][T] x[T] [P]")
    texts = template.slot_texts([" great", " film", " ok"])
    assert texts == ("great", " film", " ok")  # only a slot after whitespace drops the space
    text, spans = template.render({"text": "Nice."}, texts)
    prompt = Prompt(template.template, WORDS, triggers=texts)
    assert text == prompt.render(Example("x", {"text": "Nice."}, 0)) == "Nice. great film x ok "
    assert [text[a:b] for a, b in spans] == list(texts)


# -- the searcher ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_accepted_swaps_lower_the_train_loss(kind, task, tiny_causal, tiny_masked):
    model = model_for(kind, tiny_causal, tiny_masked)
    template = CAUSAL if kind == "causal" else MASKED
    # Gradient and re-scoring on the whole train split: every accepted swap lowers its loss.
    s = searcher(task, model, template=template, iterations=12, candidates=8, grad_batch=8,
                 eval_examples=8, batch_size=3, loss="class")  # fmt: skip
    asked = []
    while not s.exhausted:
        asked += s.ask(3)
    accepted = [h for h in s.history if h["accepted"]]
    assert accepted and len(asked) == 1 + len(accepted)
    for h in s.history:
        if h["accepted"]:
            assert h["candidate_loss"] < h["current_loss"]
    currents = [h["current_loss"] for h in s.history]
    assert all(b <= a + 1e-6 for a, b in zip(currents, currents[1:], strict=False))

    def train_loss(prompt):
        texts = [prompt.render(e) for e in task.train]
        return label_loss(model.score_labels(texts, WORDS), [e.label for e in task.train], "class")

    assert train_loss(asked[-1]) < train_loss(asked[0])
    # Every asked prompt renders its triggers as the intended tokens, and none is filtered out.
    special = special_token_ids(model)
    for prompt in asked:
        tokens = prompt.metadata["tokens"]
        assert not set(tokens) & special
        assert not {p.strip().lower() for p in prompt.triggers} & set(WORDS)
        texts, spans, _ = rendered(task, model, template, tokens, split="dev")
        assert all(triggers_intact(model, texts, spans, tokens))
        assert texts[0] == prompt.render(task.dev[0])


def test_finds_a_planted_trigger(task, tmp_path):
    # A token whose input embedding dominates the residual stream along a direction that both
    # label words' output embeddings share: read last, it makes a label word near-certain.
    model = load_model(str(build_tiny_causal(tmp_path / "planted", seed=0)))
    planted = token(model, " story")
    with torch.no_grad():
        v = torch.randn(32, generator=torch.Generator().manual_seed(1))
        v /= v.norm()
        model.input_embeddings()[planted] = 50 * v
        head = model.hf_model.get_output_embeddings().weight
        for word in WORDS:
            head[token(model, " " + word)] += 3 * v
    s = searcher(task, model, template="{text} [T][T]", iterations=6, candidates=4,
                 grad_batch=8, eval_examples=8, batch_size=10)  # fmt: skip
    asked = s.ask(10)
    assert s.tokens[1] == planted
    assert s.history[-1]["current_loss"] < 1.0 < asked[0].metadata.get("train_loss", 6.0)


def test_deterministic_and_dev_scores_pick_the_best(task, tiny_causal):
    def run(seed):
        s = searcher(task, tiny_causal, seed, iterations=8, candidates=4, grad_batch=4,
                     eval_examples=4)  # fmt: skip
        keys = []
        while not s.exhausted:
            prompts = s.ask(2)
            keys += [p.key for p in prompts]
            s.tell(outcomes(s, [(p, evaluation(p, len(p.key) % 7 / 7)) for p in prompts]))
        return s, keys

    first, keys = run(3)
    assert run(3)[1] == keys and run(4)[1] != keys
    told = {k: len(k) % 7 / 7 for k in keys}
    assert first.best_prompt is not None and told[first.best_prompt.key] == max(told.values())


def evaluation(prompt, score, n=8):
    from promptscout.evaluation.base import Evaluation

    ids = tuple(f"dev-{i}" for i in range(n))
    return Evaluation(prompt.key, "dev", ids, [], {"accuracy": score}, n)


def test_label_search_picks_planted_words_and_single_token_words(task, tiny_causal):
    # The probe, on planted data: class c's features lie along d_c, and token c's output
    # embedding is d_c, so token c is the best word of class c.
    rng = np.random.default_rng(0)
    d = rng.normal(size=(2, 16))
    labels = [0, 1] * 20
    features = np.stack([d[y] + 0.3 * rng.normal(size=16) for y in labels])
    weights, bias = train_probe(features, labels, 2)
    embeddings = np.vstack([d, rng.normal(size=(30, 16)) * 0.1])
    margins = class_margins(weights, bias, embeddings)
    words = pick_label_words(margins, np.ones(32, bool), lambda t: f"w{t}", 5)
    assert words == ["w0", "w1"]
    assert pick_label_words(margins, np.ones(32, bool), lambda t: None, 5) is None

    s = searcher(task, tiny_causal, label_search=True, iterations=2, candidates=4)
    first = s.ask(1)[0]
    assert len(set(first.label_words)) == 2 and first.label_words != WORDS
    for word in first.label_words:
        assert len(tiny_causal.tokenize(" " + word)) == 1 and word.isalpha()


def test_bad_options_are_precise_errors(task, tiny_causal):
    with pytest.raises(PromptscoutError, match="'loss' must be one of"):
        searcher(task, tiny_causal, loss="hinge")
    with pytest.raises(PromptscoutError, match="has 2 \\[T\\] slots but 'num_triggers' is 3"):
        searcher(task, tiny_causal, template="{text} [T][T]", num_triggers=3)
    with pytest.raises(PromptscoutError, match="not an input field"):
        searcher(task, tiny_causal, template="{sentence} [T]")
    with pytest.raises(PromptscoutError, match="'candidates' must be at least 1"):
        searcher(task, tiny_causal, candidates=0)
    with pytest.raises(PromptscoutError, match="does not stay one token"):
        searcher(task, tiny_causal, initial_trigger="zqxv").ask(1)
    with pytest.raises(PromptscoutError, match="put \\[P\\] last"):
        searcher(task, tiny_causal, template="{text} [T] [P] .").ask(1)
    assert searcher(task, tiny_causal, template="{text} It was").template.template == (
        "{text} It was [T][T][T][T][T]"
    )


def test_example_campaign_file_builds_the_searcher():
    config = load_config(Path(__file__).parents[1] / "examples" / "sst2-autoprompt.toml")
    (spec,) = config.searchers
    sst2 = load_task("sst-2")
    s = create_searcher(spec.type, spec.options, SearchContext(sst2, ("terrible", "great"), 0))
    assert s.template.template == "{text} [T][T][T][T][T]"
