"""Quoting user values and name lists in one-line error messages."""

from __future__ import annotations

from collections.abc import Sequence


def _show(value: object, limit: int = 60) -> str:
    """Quote a user value for a one-line message (repr escapes newlines and tabs)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(items: Sequence[str], limit: int = 12) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
