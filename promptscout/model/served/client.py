"""The request layer of a served model: :class:`ServerClient` sends completions and chat
completions through the ``openai`` client (its timeout, retries and key from the options) and a
rate limiter, reports each answer's ``usage``, and turns failures into one line;
:func:`map_concurrently` fans requests out over threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

from promptscout.errors import PromptscoutError
from promptscout.model.served.errors import RefusedError, api_key, raise_one_line
from promptscout.model.served.options import ServedOptions

_NO_KEY = "EMPTY"  # sent when no key is configured: the client needs one, local servers ignore it
_T = TypeVar("_T")


class _RateLimiter:
    """Spaces request starts at least ``60 / per_minute`` seconds apart, across threads."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class ServerClient:
    """The requests of one served model to its server.

    Attributes:
        model_id: the id the server lists, sent with every request.
        options: the :class:`~promptscout.model.served.ServedOptions` the client was made with
            (URL, key, timeout, retries, rate).
        base_url: the server's OpenAI-compatible root, without a trailing slash.
        root: the server's root, beside ``/v1`` (where the tokenizer endpoints live).
        openai: the ``openai`` module (imported when a served model is made, not before).
        client: the ``openai.OpenAI`` client.
    """

    def __init__(
        self, model_id: str, options: ServedOptions, on_usage: Callable[[int, int], None]
    ) -> None:
        """``on_usage(prompt_tokens, completion_tokens)`` is called for every answered
        completion request (from several threads at once)."""
        import openai

        self.model_id = model_id
        self.options = options
        self.base_url = options.base_url.rstrip("/")
        # The tokenizer endpoints live at the server's root, beside /v1.
        self.root = self.base_url.removesuffix("/v1")
        self.openai = openai
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key(options) or _NO_KEY,
            timeout=options.timeout,
            max_retries=options.max_retries,
        )
        self._limiter = _RateLimiter(options.requests_per_minute)
        self._on_usage = on_usage

    def fail(self, e: Exception, what: str) -> NoReturn:
        """Raise the client's error ``e`` on request ``what`` as one line (see
        :func:`~promptscout.model.served.errors.raise_one_line`)."""
        raise_one_line(e, what, self.base_url, self.options)

    def request(self, endpoint: str, *, retries: int | None = None, **kw: Any) -> Any:
        """One ``completions`` or ``chat`` request through the rate limiter, reporting the
        server's usage; ``retries`` overrides ``max_retries``."""
        self._limiter.wait()
        client = self.client if retries is None else self.client.with_options(max_retries=retries)
        create = client.chat.completions.create if endpoint == "chat" else client.completions.create
        try:
            answer = create(model=self.model_id, **kw)
        except self.openai.OpenAIError as e:
            self.fail(e, f"POST /{endpoint.replace('chat', 'chat/completions')}")
        usage = getattr(answer, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        self._on_usage(prompt, completion)
        return answer

    def complete(
        self, prompt: str, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> str:
        """Completion of a plain text (greedy at ``temperature`` 0); only the new text."""
        answer = self.request(
            "completions",
            prompt=prompt,
            max_tokens=max_new_tokens,
            temperature=temperature,
            **({"seed": seed} if seed is not None else {}),
        )
        if not answer.choices:
            raise PromptscoutError(f"{self.base_url} returned no completion")
        return answer.choices[0].text or ""

    def reply(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> str:
        """Assistant reply to chat messages (greedy at ``temperature`` 0)."""
        answer = self.request(
            "chat",
            messages=messages,
            max_tokens=max_new_tokens,
            temperature=temperature,
            **({"seed": seed} if seed is not None else {}),
        )
        return (answer.choices[0].message.content or "") if answer.choices else ""

    def echo(self, prompts: list[str], retries: int | None = None) -> list[Any]:
        """One ``/v1/completions`` echo request; its choices in the order of ``prompts``."""
        answer = self.request(
            "completions",
            prompt=prompts if len(prompts) > 1 else prompts[0],
            echo=True,
            logprobs=1,
            max_tokens=1,  # llama.cpp's server takes 0 as "no limit"
            temperature=0,
            retries=retries,
        )
        choices = sorted(answer.choices, key=lambda c: c.index)
        if len(choices) != len(prompts):
            raise PromptscoutError(
                f"{self.base_url} answered {len(choices)} choices to {len(prompts)} prompts"
            )
        return choices

    def top(self, text: str, n: int) -> list[tuple[str, float]] | None:
        """The ``n`` next-token top log-probabilities after ``text`` (``top_logprobs``), or
        None where the server wrote nothing after it (see :meth:`_top_answer`)."""
        return self._top_answer("completions", prompt=text, logprobs=n)

    def top_chat(self, messages: list[dict[str, str]], n: int) -> list[tuple[str, float]] | None:
        """The ``n`` top log-probabilities of the assistant reply's first token (chat)."""
        return self._top_answer("chat", messages=messages, logprobs=True, top_logprobs=n)

    def _top_answer(self, endpoint: str, **kw: Any) -> list[tuple[str, float]] | None:
        """The first answer token's top log-probabilities: [] when the answer carries none,
        None when the server wrote no token at all.

        A server may stop before the first token when the most likely one ends the text, and
        then list nothing (llama-cpp-python's does); the request is then sent once more with
        ``min_tokens: 1`` (vLLM and llama.cpp take it), which keeps the end out of the sampler
        but leaves the log-probabilities as they are.
        """
        answer = self.request(endpoint, max_tokens=1, temperature=0, **kw)
        top = _top_of(answer, endpoint)
        if top or not _wrote_nothing(answer):
            return top
        try:
            again = self.request(
                endpoint, max_tokens=1, temperature=0, extra_body={"min_tokens": 1}, retries=0, **kw
            )
        except RefusedError:
            return None
        return _top_of(again, endpoint) or None


def map_concurrently(fn: Callable[[Any], _T], items: Sequence[Any], workers: int) -> list[_T]:
    """``fn`` over ``items`` by up to ``workers`` threads; results in order, the first error
    raised (requests not yet started are cancelled)."""
    items = list(items)
    workers = min(workers, len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promptscout-served")
    futures: list[Future[_T]] = [pool.submit(fn, x) for x in items]
    try:
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _top_of(answer: Any, endpoint: str) -> list[tuple[str, float]]:
    """The (token text, log-probability) list of a completion's first token."""
    choice = answer.choices[0] if answer.choices else None
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is None:
        return []
    if endpoint == "chat":
        content = logprobs.content or []
        return (
            [(str(t.token), float(t.logprob)) for t in content[0].top_logprobs or []]
            if content
            else []
        )
    tops = logprobs.top_logprobs or []
    return [(str(k), float(v)) for k, v in (tops[0] or {}).items()] if tops else []


def _wrote_nothing(answer: Any) -> bool:
    """Whether a completion stopped before its first token."""
    choice = answer.choices[0] if answer.choices else None
    if choice is None or choice.finish_reason != "stop":
        return False
    text = choice.message.content if hasattr(choice, "message") else choice.text
    return not text
