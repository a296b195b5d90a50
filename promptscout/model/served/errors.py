"""A failed request to the server as one line naming the fix: :func:`raise_one_line` turns the
``openai`` client's exception into a :class:`~promptscout.errors.PromptscoutError` (a
:class:`RefusedError` where the server answered with an error status), the API key blanked."""

from __future__ import annotations

import os
from typing import Any, NoReturn

from promptscout.errors import PromptscoutError, first_line
from promptscout.model.served.options import ServedOptions


class RefusedError(PromptscoutError):
    """The server answered a request with an error status (not 401/403): the probe turns it
    into "use another scoring mode". ``reason``: the status and the server's message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def api_key(options: ServedOptions) -> str:
    """The API key from the environment variable the options name ("" without one)."""
    env = options.api_key_env
    return os.environ.get(env, "") if env else ""


def raise_one_line(e: Exception, what: str, url: str, options: ServedOptions) -> NoReturn:
    """The client's error ``e`` on request ``what`` to ``url`` as one line (the key, should a
    server echo it, blanked)."""
    import openai

    reason = ""
    if isinstance(e, openai.APITimeoutError):
        message = (
            f"{url} did not answer {what} within {options.timeout:g} s "
            f"({options.max_retries} retries); raise [model] timeout or lower "
            "[model] concurrency"
        )
    elif isinstance(e, openai.APIConnectionError):
        message = f"cannot reach {url}: {_root_cause(e)}; start the server or fix [model] base_url"
    elif isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
        message = f"{url} refused the request ({e.status_code}): {_key_hint(options)}"
    elif isinstance(e, openai.APIStatusError):
        reason = f"{e.status_code}: {_server_message(e)}"
        message = f"{url} answered {what} with {reason}"
    else:
        message = f"{url}: {type(e).__name__}: {first_line(str(e), 200)}"
    key = api_key(options)
    if key:
        message, reason = message.replace(key, "***"), reason.replace(key, "***")
    if reason:
        raise RefusedError(message, reason) from e
    raise PromptscoutError(message) from e


def _key_hint(options: ServedOptions) -> str:
    env = options.api_key_env
    if not env:
        return (
            "the server wants an API key: put it in an environment variable and name that "
            "variable in [model] api_key_env"
        )
    state = "is set" if api_key(options) else "is NOT set"
    return f"check the API key in the environment variable {env} ([model] api_key_env; it {state})"


def _root_cause(e: BaseException) -> str:
    """The innermost cause of a connection error, e.g. "connection refused"."""
    inner: BaseException = e
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror.lower()
    return first_line(str(inner), 200) or type(inner).__name__


def _server_message(e: Any) -> str:
    """The message in an error answer's body (OpenAI's ``{"error": {"message"}}``, FastAPI's
    ``{"detail"}``), else the client's."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        for key in ("message", "detail"):
            if isinstance(inner, dict) and inner.get(key):
                return first_line(str(inner[key]), 200)
        if body.get("detail"):
            return first_line(str(body["detail"]), 200)
    return first_line(str(getattr(e, "message", "") or e), 200) or "no message"
