"""What is installed: searchers (built in and plug-ins), objectives, models, and the options of
every campaign-file table and searcher, as plain data and as the README's generated options
reference (``promptscout plugins --json``, ``--markdown``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError

REFERENCE_START = "<!-- options-reference:start -->"
REFERENCE_END = "<!-- options-reference:end -->"


def option_tables(
    plugins: bool = False, note: Callable[[str], None] | None = None
) -> dict[str, dict[str, type]]:
    """The dataclass behind every options table: ``sections`` (the campaign file's tables) and
    ``searchers`` (each searcher type's config; entry-point plug-ins too with ``plugins``)."""
    from promptscout.config import SECTIONS
    from promptscout.searchers import SEARCHERS, available_searchers, searcher_class

    names = available_searchers() if plugins else sorted(SEARCHERS)
    searchers = {}
    for name in names:
        try:
            searchers[name] = searcher_class(name).config_class
        except Exception as exc:  # a plug-in that does not load: listed without options
            if note is not None:
                note(f"note: searcher '{name}' does not load: {exc}")
    return {"sections": dict(SECTIONS), "searchers": searchers}


def heading(group: str, name: str) -> str:
    return f"[{name}]" if group == "sections" else f'[[searchers]] type = "{name}"'


def options_reference() -> str:
    """The README's options reference (Markdown): one table per campaign-file table and per
    built-in searcher, generated from the options' declarations."""
    from promptscout.options import markdown_table

    parts = [
        REFERENCE_START,
        "<!-- Generated from the options' declarations by `promptscout plugins --markdown "
        "README.md`; edit the help texts in the code, not here. -->",
    ]
    titles = {"sections": "### Tables", "searchers": "### Searchers (`[[searchers]]` tables)"}
    for group, tables in option_tables().items():
        parts.append(titles[group])
        for name, cls in tables.items():
            parts += [f"#### `{heading(group, name)}`", markdown_table(cls)]
    return "\n\n".join([*parts, REFERENCE_END]) + "\n"


def write_reference(path: Path) -> None:
    """Replace the options reference block of ``path`` (between the markers) with a fresh one."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(REFERENCE_START), text.find(REFERENCE_END)
    if start < 0 or end < start:
        raise PromptscoutError(f"{path} has no {REFERENCE_START} ... {REFERENCE_END} block")
    text = text[:start] + options_reference() + text[end + len(REFERENCE_END) + 1 :]
    path.write_text(text, encoding="utf-8")


def catalog(note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Searchers with their options, the campaign file's tables with theirs, objectives and
    models: what ``promptscout plugins --json`` prints."""
    from promptscout.model import known_models
    from promptscout.objectives import OBJECTIVES, plugin_objective_names
    from promptscout.options import describe_options

    tables = option_tables(plugins=True, note=note)
    return {
        "searchers": {
            name: {"options": describe_options(cls)} for name, cls in tables["searchers"].items()
        },
        "sections": {name: describe_options(cls) for name, cls in tables["sections"].items()},
        "objectives": sorted(set(OBJECTIVES) | set(plugin_objective_names())),
        "models": known_models(),
    }
