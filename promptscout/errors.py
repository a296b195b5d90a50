"""The one exception type users see.

Every problem caused by input (a config file, a data file, a model name, a template) is raised as
:class:`PromptscoutError` with a single line that names the problem and how to fix it. The CLI
prints it as ``error: <message>`` and exits with status 2; anything else is a bug.
"""

from __future__ import annotations


class PromptscoutError(Exception):
    """A user-facing error: one line naming the problem (file, line, field) and the fix."""


def first_line(message: object, limit: int = 0) -> str:
    """The first line of an error message (or an exception's), stripped: how another library's
    error goes into one of ours. With a ``limit``, cut to that many characters, ending in
    "..."; "" when empty."""
    text = str(message).strip()
    line = text.splitlines()[0].strip() if text else ""
    return line if not limit or len(line) <= limit else line[: limit - 3] + "..."
