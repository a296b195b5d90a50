"""The start-up checks of a served model: :func:`check_server` asks the server once whether it
answers, lists the model id, accepts the key and does the scoring mode right, and reports what
it learnt (:class:`ServerFacts`); any failure is one line naming the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from promptscout.errors import PromptscoutError
from promptscout.model.served.client import ServerClient
from promptscout.model.served.errors import RefusedError
from promptscout.model.served.options import ECHO_TOLERANCE, ServedOptions
from promptscout.model.served.tokens import Tokenizer, find_tokenizer

_PROBE_TEXT = "The capital of France is Paris"
_PROBE_CHAT = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@dataclass(frozen=True)
class ServerFacts:
    """What :func:`check_server` learnt about the server.

    Attributes:
        max_length: the context size the server reports (its model listing's or its
            tokenizer's ``max_model_len``), or None.
        tokenizer: its tokenizer endpoint, or None.
        echo_lists: echo requests take several prompts at once; None: not probed (only
            ``echo`` scoring is).
    """

    max_length: int | None
    tokenizer: Tokenizer | None
    echo_lists: bool | None


def check_server(server: ServerClient, options: ServedOptions, chat: bool) -> ServerFacts:
    """Check the server once for scoring by ``options`` (``chat``: prompts go to the chat
    endpoint): it answers, lists the model id, accepts the key, and does the scoring mode right.

    Raises:
        PromptscoutError: one line naming what is wrong and the fix.
    """
    max_length = _check_listed(server)
    tokenizer = find_tokenizer(server)
    if tokenizer is not None and tokenizer.max_length is not None:
        max_length = tokenizer.max_length
    echo_lists = None
    if options.scoring == "echo":
        echo_lists = _probe_echo(server, options)
    elif options.scoring == "top_logprobs":
        _probe_top(server, options, chat)
    else:
        _probe_generate(server, chat)
    return ServerFacts(max_length, tokenizer, echo_lists)


def _check_listed(server: ServerClient) -> int | None:
    """Check that the server lists the model id; the context size it lists (vLLM's
    ``max_model_len``), or None."""
    try:
        # One retry only: a server that is down is said in a second, not after the backoff
        # of max_retries (which still covers every scoring request).
        models = list(server.client.with_options(max_retries=1).models.list().data)
    except server.openai.NotFoundError as e:
        raise PromptscoutError(
            f"{server.base_url} does not answer GET /models (404): set [model] base_url to "
            "the server's OpenAI-compatible root, usually ending in /v1"
        ) from e
    except server.openai.OpenAIError as e:
        server.fail(e, "GET /models")
    ids = [str(m.id) for m in models]
    if server.model_id not in ids:
        listed = ", ".join(ids[:20]) + (f" (and {len(ids) - 20} more)" if len(ids) > 20 else "")
        raise PromptscoutError(
            f"{server.base_url} does not list model '{server.model_id}'; it lists: "
            f"{listed or 'none'}; use openai:<one of them>"
        )
    extra = getattr(models[ids.index(server.model_id)], "model_extra", None) or {}
    if isinstance(extra.get("max_model_len"), int) and extra["max_model_len"] > 0:
        return extra["max_model_len"]
    return None


def _refuse(server: ServerClient, options: ServedOptions, why: str, instead: str) -> NoReturn:
    raise PromptscoutError(
        f'{server.base_url} cannot do scoring = "{options.scoring}" for model '
        f"'{server.model_id}': {why}; use scoring = \"{instead}\""
    )


def _probe_echo(server: ServerClient, options: ServedOptions) -> bool:
    """The echoed log-probability of the probe text's last token must match the next-token
    log-probability of that token after the rest of the text. Returns whether echo requests
    take several prompts at once."""
    text = _PROBE_TEXT
    try:
        (choice,) = server.echo([text])
    except RefusedError as e:
        _refuse(server, options, f"an echo request failed ({e.reason})", "top_logprobs")
    logprobs = choice.logprobs
    if logprobs is None or not logprobs.tokens or not logprobs.text_offset:
        _refuse(server, options, "the answer carries no echoed log-probabilities", "top_logprobs")
    inside = [i for i, offset in enumerate(logprobs.text_offset) if 0 < offset < len(text)]
    values = logprobs.token_logprobs or []
    if not inside or inside[-1] >= len(values) or values[inside[-1]] is None:
        _refuse(server, options, "the answer carries no echoed log-probabilities", "top_logprobs")
    last = inside[-1]
    token, echoed = logprobs.tokens[last], float(values[last])
    try:
        top = server.top(text[: logprobs.text_offset[last]], options.top_logprobs)
    except RefusedError as e:
        _refuse(server, options, f"a top_logprobs request failed ({e.reason})", "generate")
    if not top:
        _refuse(server, options, "its answers carry no top log-probabilities", "generate")
    listed = dict(top)
    expected = listed.get(token)
    if expected is None:
        ok, detail = echoed <= min(listed.values()) + ECHO_TOLERANCE, "below the top list"
    else:
        ok, detail = abs(echoed - expected) <= ECHO_TOLERANCE, f"{expected:.2f}"
    if not ok:
        _refuse(
            server,
            options,
            f"its echoed log-probabilities are wrong ({token!r} after "
            f"{text[: logprobs.text_offset[last]]!r}: echo {echoed:.2f}, next token "
            f"{detail})",
            "top_logprobs",
        )
    # Several prompts per request, where the endpoint takes a list (vLLM does;
    # llama-cpp-python's server answers 500, which is not worth retrying here).
    try:
        return len(server.echo([text, text], retries=0)) == 2
    except PromptscoutError:
        return False


def _probe_top(server: ServerClient, options: ServedOptions, chat: bool) -> None:
    n = options.top_logprobs
    try:
        if chat:
            top = server.top_chat(_PROBE_CHAT, n)
        else:
            top = server.top(_PROBE_TEXT.rpartition(" ")[0], n)
    except RefusedError as e:
        _refuse(
            server,
            options,
            f"a request for {n} top log-probabilities failed "
            f"({e.reason}; some servers allow 5 or 20: lower [model] top_logprobs)",
            "generate",
        )
    if not top:
        _refuse(server, options, "its answers carry no top log-probabilities", "generate")


def _probe_generate(server: ServerClient, chat: bool) -> None:
    # A completion must come back (its text may be empty); errors name themselves.
    if chat:
        server.reply(_PROBE_CHAT, 1)
    else:
        server.complete(_PROBE_TEXT, 1)
