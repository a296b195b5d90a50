"""The served backend (:mod:`promptscout.model.served`) against a real OpenAI-compatible server:
llama-cpp-python's, on the embedded SmolLM2 GGUF (``llama_server`` in served_fixtures.py),
compared with the same model in-process. No mocks: the errors come from a port nothing listens
on, a model id the server does not list, and a tiny server that answers 401."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
from served_fixtures import free_port

from promptscout.errors import PromptscoutError
from promptscout.model import EMBEDDED_MODEL_NAME, ServedModel, ServedOptions, load_model
from promptscout.model.served import _RateLimiter, answer_class
from promptscout.prompts import Prompt, chat_text
from promptscout.tasks import load_task

WORDS = ["negative", "positive"]
TEMPLATE = "Review: {text}\nSentiment:"
FAKE_KEY = "sk-promptscout-test-5ecret-value"

integration = pytest.mark.integration


@pytest.fixture(scope="module")
def dev_examples():
    return load_task("sst-2", seed=42).dev[:10]


@pytest.fixture(scope="module")
def in_process():
    return load_model(EMBEDDED_MODEL_NAME)


def served(server, **options) -> ServedModel:
    model = load_model(
        f"openai:{server.model_id}", served=ServedOptions(base_url=server.base_url, **options)
    )
    assert isinstance(model, ServedModel)
    return model


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# -- against the server -----------------------------------------------------------------------


@integration
def test_top_logprobs_agree_with_the_in_process_model(llama_server, in_process, dev_examples):
    model = served(llama_server, top_logprobs=100)
    texts = [Prompt(TEMPLATE, WORDS).render(e) for e in dev_examples]
    remote, local = model.score_labels(texts, WORDS), in_process.score_labels(texts, WORDS)
    assert remote.shape == (len(texts), 2) and remote.dtype == np.float64
    # Both words are one token, found in every list: every score is exact.
    assert model.match_counts == {"exact": 2 * len(texts), "first_token": 0, "floor": 0}
    assert model.last_matches == [["exact", "exact"]] * len(texts)
    # Q4_1 kernels (8-bit activations, f16 key/value cache) against float32 weights dequantized
    # from the same file: measured mean 0.10 nats, max 0.38 on these texts.
    diff = np.abs(remote - local)
    assert diff.mean() < 0.3 and diff.max() < 1.0, diff
    assert (remote.argmax(1) == local.argmax(1)).all()


@integration
def test_words_of_several_tokens_and_words_not_listed(llama_server, in_process):
    model = served(llama_server, top_logprobs=20)
    assert model.tokenizer_endpoint.endswith("/extras/tokenize")
    assert model.tokenize(" Paris-based") == in_process.tokenize(" Paris-based")
    assert model.count_tokens("The capital of France is") == 5
    text = "The capital of France is"
    # " Paris-based": first token " Paris" (listed); " zqxv": not listed; " positiveness"
    # starts with the listed-looking " positive" but its own first token is " posit".
    scores = model.score_labels([text], ["Paris-based", "zqxv", "positiveness"])[0]
    cases = model.last_matches[0]
    assert cases[0] == "first_token" and cases[1] == "floor"
    local_paris = in_process.score_labels([text], ["Paris"])[0, 0]
    assert abs(scores[0] - local_paris) < 0.5
    floor = scores[1]
    assert floor < -5 and cases[2] in ("floor", "first_token")
    if cases[2] == "floor":
        assert scores[2] == floor
    assert sum(model.match_counts.values()) == 3


@integration
def test_no_label_word_in_the_top_list_asks_for_a_deeper_one(llama_server, in_process):
    # After this review the model expects " I", " The" ...: neither label word is in the top 20.
    text = Prompt(TEMPLATE, tuple(WORDS)).render(load_task("sst-2", seed=42).test[57])
    shallow = served(llama_server, deep_logprobs=0)
    tie = shallow.score_labels([text], WORDS)[0]
    assert shallow.last_matches == [["floor", "floor"]] and tie[0] == tie[1]
    model = served(llama_server)  # deep_logprobs = 100
    scores = model.score_labels([text], WORDS)[0]
    assert model.last_matches == [["exact", "exact"]] and model.deepened == 1
    assert model.requests == 2 and model.counters()["deepened"] == 1
    local = in_process.score_labels([text], WORDS)[0]
    assert np.allclose(scores, local, atol=0.5)


@integration
def test_a_text_the_model_would_end_is_still_scored(llama_server, in_process):
    # The end of text is this text's most likely next token: llama-cpp-python's server then
    # writes and lists nothing, and the model asks again with min_tokens = 1.
    text = (
        "Is this review positive or negative?\nReview: here is a vh1 behind the music special "
        "that has something a little more special behind it : music that did n't sell many "
        "records but helped change a nation .\nAnswer:"
    )
    model = served(llama_server, top_logprobs=100)
    scores = model.score_labels([text], WORDS)[0]
    assert model.requests == 2
    assert model.last_matches == [["exact", "floor"]]
    assert abs(scores[0] - in_process.score_labels([text], WORDS)[0, 0]) < 1.0


@integration
def test_echo_is_refused_at_start_naming_top_logprobs(llama_server):
    with pytest.raises(PromptscoutError) as excinfo:
        served(llama_server, scoring="echo")
    message = one_line_error(excinfo)
    assert 'scoring = "echo"' in message and 'use scoring = "top_logprobs"' in message
    assert "echoed log-probabilities are wrong" in message


@integration
def test_echo_scoring_sums_the_words_echoed_tokens(llama_server):
    # This server's echo numbers are wrong (the probe refuses it), but its answers still show
    # that echo scoring sums the word's tokens, one prompt per request (it refuses lists).
    # One request at a time: this server's echoed numbers also depend on which prompt it served
    # just before (its prompt cache), so the check below must send them in the same order.
    model = served(llama_server)
    model.options = replace(model.options, scoring="echo", concurrency=1)
    text = "The capital of France is"
    scores = model.score_labels([text], ["Paris", "Paris-based"])[0]
    assert model.requests == 2 and not model._echo_lists
    for word, score in zip(["Paris", "Paris-based"], scores, strict=True):
        answer = model._client.completions.create(
            model=model.model_id, prompt=f"{text} {word}", echo=True, logprobs=1, max_tokens=1
        )
        logprobs = answer.choices[0].logprobs
        rows = zip(logprobs.tokens, logprobs.text_offset, logprobs.token_logprobs, strict=True)
        tokens = [(t, v) for t, o, v in rows if len(text) <= o < len(text) + 1 + len(word)]
        assert "".join(t for t, _ in tokens) == f" {word}"
        assert score == pytest.approx(sum(v for _, v in tokens))


@integration
def test_generate_scoring_parses_answers(llama_server, dev_examples):
    model = served(llama_server, scoring="generate", max_new_tokens=4)
    texts = [Prompt(TEMPLATE, WORDS).render(e) for e in dev_examples[:3]]
    scores = model.score_labels(texts, WORDS)
    assert len(model.last_answers) == 3
    for row, answer in zip(scores, model.last_answers, strict=True):
        c = answer_class(answer, WORDS)
        expected = np.full(2, -30.0)
        if c is not None:
            expected[c] = 0.0
        assert (row == expected).all(), answer
    parsed = sum(answer_class(a, WORDS) is not None for a in model.last_answers)
    assert parsed >= 1 and model.unparseable == 3 - parsed
    # Words the answer never names: every class -30, no unique maximum.
    before = model.unparseable
    scores = model.score_labels(texts[:1], ["zebra", "quokka"])
    assert (scores == -30.0).all() and model.unparseable == before + 1


@integration
def test_chat_with_top_logprobs(llama_server, in_process, dev_examples):
    model = served(llama_server, chat=True, top_logprobs=50)
    assert model.chat and not in_process.chat
    prompt = Prompt(
        "{text}",
        WORDS,
        instruction="Classify the sentiment of the movie review. Answer with one word: "
        "positive or negative.",
    )
    texts = [chat_text(prompt.messages(e)) for e in dev_examples[:4]]
    remote, local = model.score_labels(texts, WORDS), in_process.score_labels(texts, WORDS)
    exact = np.array(model.last_matches) == "exact"
    assert model.match_counts["exact"] == exact.sum() >= 4
    # The reply's first word, no leading space: the same as the chat template in-process.
    assert np.abs(remote - local)[exact].max() < 1.0
    answers = model.generate(texts[:1], max_new_tokens=3)
    assert len(answers) == 1 and isinstance(answers[0], str)
    with pytest.raises(PromptscoutError, match="chat = false"):
        served(llama_server).score_labels(texts[:1], WORDS)


@integration
def test_concurrency_gives_the_same_scores_and_counters_count(llama_server, dev_examples):
    texts = [Prompt(TEMPLATE, WORDS).render(e) for e in dev_examples[:8]]
    results = {}
    for concurrency in (1, 4):
        model = served(llama_server, concurrency=concurrency)
        assert model.requests == 0 and model.prompt_tokens == 0  # the probe is not counted
        start = time.perf_counter()
        results[concurrency] = model.score_labels(texts, WORDS)
        seconds = time.perf_counter() - start
        print(f"concurrency {concurrency}: {len(texts) / seconds:.1f} requests/s")
        assert model.requests == len(texts)
        assert model.prompt_tokens == sum(model.count_tokens(t) for t in texts)
        assert model.completion_tokens == len(texts)  # max_tokens 1
        assert model.tokens_forwarded == model.prompt_tokens
        generated = model.generate(texts[:2], max_new_tokens=3)
        assert len(generated) == 2 and model.requests == len(texts) + 2
        assert len(texts) + 2 <= model.completion_tokens <= len(texts) + 6
    assert np.array_equal(results[1], results[4])


@integration
def test_sampled_generation_is_seeded_per_text(llama_server):
    """What the writer searchers rely on: the same seed gives the same samples (text i asks
    with seed + i, so one text twice gives two draws), another seed others."""
    model = served(llama_server, concurrency=2)
    texts = ["Write one instruction for a sentiment classifier:"] * 3
    first = model.generate(texts, 12, temperature=1.0, seed=11)
    assert first == model.generate(texts, 12, temperature=1.0, seed=11)
    assert len(set(first)) > 1
    assert first != model.generate(texts, 12, temperature=1.0, seed=12)


@integration
def test_identity_and_white_box_refusals(llama_server):
    model = served(llama_server)
    assert model.kind == "served" and model.max_length == 4096
    assert model.fingerprint == served(llama_server).fingerprint
    assert model.fingerprint != served(llama_server, top_logprobs=10).fingerprint
    assert model.fingerprint != served(llama_server, chat=True).fingerprint
    for call in (
        model.input_embeddings,
        lambda: model.hidden_states(["a"]),
        lambda: model.next_token_log_probs(["a"]),
        lambda: model.score_labels_soft(["a"], WORDS, {}),
    ):
        with pytest.raises(PromptscoutError, match="in-process model"):
            call()


@integration
def test_a_failed_request_raises_one_line(llama_server):
    model = served(llama_server, max_retries=0)
    with pytest.raises(PromptscoutError) as excinfo:
        model.score_labels(["word " * 3000], WORDS)  # beyond the server's 2048-token context
    assert llama_server.base_url in one_line_error(excinfo)


@integration
def test_a_model_the_server_does_not_list(llama_server):
    with pytest.raises(PromptscoutError) as excinfo:
        load_model("openai:gpt-9", served=ServedOptions(base_url=llama_server.base_url))
    message = one_line_error(excinfo)
    assert "does not list model 'gpt-9'" in message and "it lists: smollm2" in message


# -- without a model ----------------------------------------------------------------------------


def test_a_server_that_is_down(monkeypatch):
    monkeypatch.setenv("PROMPTSCOUT_TEST_KEY", FAKE_KEY)
    url = f"http://127.0.0.1:{free_port()}/v1"
    options = ServedOptions(base_url=url, api_key_env="PROMPTSCOUT_TEST_KEY", max_retries=0)
    with pytest.raises(PromptscoutError) as excinfo:
        load_model("openai:anything", served=options)
    message = one_line_error(excinfo)
    assert message == (
        f"cannot reach {url}: connection refused; start the server or fix [model] base_url"
    )


def test_a_server_that_answers_401_names_api_key_env(monkeypatch, unauthorized_url):
    monkeypatch.setenv("PROMPTSCOUT_TEST_KEY", FAKE_KEY)
    options = ServedOptions(base_url=unauthorized_url, api_key_env="PROMPTSCOUT_TEST_KEY")
    with pytest.raises(PromptscoutError) as excinfo:
        load_model("openai:anything", served=options)
    message = one_line_error(excinfo)
    assert "401" in message and "PROMPTSCOUT_TEST_KEY" in message and "it is set" in message
    assert FAKE_KEY not in message and FAKE_KEY not in repr(excinfo.value)
    monkeypatch.delenv("PROMPTSCOUT_TEST_KEY")
    with pytest.raises(PromptscoutError, match="PROMPTSCOUT_TEST_KEY.*NOT set"):
        load_model("openai:anything", served=options)
    with pytest.raises(PromptscoutError, match="api_key_env"):
        load_model("openai:anything", served=ServedOptions(base_url=unauthorized_url))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"scoring": "logits"}, "unknown \\[model\\] scoring 'logits'; use one of echo, "),
        ({"scoring": "echo", "chat": True}, "chat endpoints have no echo"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"requests_per_minute": -1}, "requests_per_minute"),
    ],
)
def test_bad_options_raise_one_line(options, match):
    with pytest.raises(PromptscoutError, match=match) as excinfo:
        ServedOptions(base_url="http://127.0.0.1:1/v1", **options)
    one_line_error(excinfo)


def test_load_model_needs_options_for_openai_names_only():
    with pytest.raises(PromptscoutError, match="base_url") as excinfo:
        load_model("openai:smollm2")
    one_line_error(excinfo)
    with pytest.raises(PromptscoutError, match="openai:MODEL_ID"):
        load_model(EMBEDDED_MODEL_NAME, served=ServedOptions(base_url="http://127.0.0.1:1/v1"))
    from promptscout.model import known_models

    assert any(name.startswith("openai:") for name in known_models())


def test_answer_class_takes_the_first_whole_word():
    words = ["negative", "positive", "very positive"]
    assert answer_class("Positive! Not negative.", words) == 1
    assert answer_class("very positive indeed", words) == 2
    assert answer_class("positively negative", words) == 0
    assert answer_class("nonpositive", words) is None


def test_rate_limiter_spaces_requests():
    limiter = _RateLimiter(600)  # one every 0.1 s
    start = time.monotonic()
    for _ in range(4):
        limiter.wait()
    assert time.monotonic() - start >= 0.3 - 1e-3
    assert _RateLimiter(0).interval == 0 and math.isclose(limiter.interval, 0.1)
