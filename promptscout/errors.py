"""The one exception type users see.

Every problem caused by input (a config file, a data file, a model name, a template) is raised as
:class:`PromptscoutError` with a single line that names the problem and how to fix it. The CLI
prints it as ``error: <message>`` and exits with status 2; anything else is a bug.
"""

from __future__ import annotations


class PromptscoutError(Exception):
    """A user-facing error: one line naming the problem (file, line, field) and the fix."""
