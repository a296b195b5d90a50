"""The writers' meta-prompts: the texts that ask the proposer to write, one plain-text file per
writer, shipped in ``meta_prompts/`` beside this module; a campaign can point a writer to its
own file (option ``meta_prompt``).

A file holds named sections, each opened by a line ``### <name>``; a section is filled by its
``{placeholder}`` fields (what each may and must hold is the writer's :data:`Sections`).
Filling inserts values verbatim (:func:`~promptscout.prompts.fill_template`), so an example that
holds braces is never read as a placeholder.

Example:
    >>> texts = load_meta_prompts("ape", "", {"write": ({"demos"}, {"demos"}),
    ...                                       "resample": ({"instruction"}, {"instruction"})})
    >>> "{demos}" in texts["write"]
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from promptscout.errors import PromptscoutError
from promptscout.prompts import fill_template, template_fields

SHIPPED = Path(__file__).resolve().parent / "meta_prompts"
_HEADER = re.compile(r"^### +(\w+) *$", re.MULTILINE)

# Section name -> (placeholders it may hold, placeholders it must hold).
Sections = Mapping[str, tuple[set[str], set[str]]]


def load_meta_prompts(writer: str, path: str, sections: Sections) -> dict[str, str]:
    """The sections of ``path`` (the shipped ``<writer>.txt`` when empty), checked.

    Raises:
        PromptscoutError: the file is missing, or a section is missing, holds a placeholder it
            may not, or lacks one it must (one line naming the file and the section).
    """
    source = Path(path) if path else SHIPPED / f"{writer}.txt"
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as e:
        raise PromptscoutError(
            f"meta-prompt file {source}: {e.strerror or e}; fix the {writer} searcher's "
            "'meta_prompt' option"
        ) from e
    found = _sections(text)
    texts = {}
    for name, (allowed, needed) in sections.items():
        if name not in found:
            raise PromptscoutError(
                f"{source}: no '### {name}' section; the {writer} writer needs "
                f"{', '.join('### ' + n for n in sections)}"
            )
        fields = set(template_fields(found[name]))
        if fields - allowed or needed - fields:
            problem = (
                f"holds {{{sorted(fields - allowed)[0]}}}"
                if fields - allowed
                else f"lacks {{{sorted(needed - fields)[0]}}}"
            )
            known = ", ".join(f"{{{f}}}" for f in sorted(allowed))
            raise PromptscoutError(
                f"{source}: section '### {name}' {problem}; its placeholders are {known}"
            )
        texts[name] = found[name]
    return texts


def fill(section: str, **values: str) -> str:
    """A section with its placeholders filled (values inserted verbatim)."""
    return fill_template(section, values)


def wording(section: str) -> str:
    """A section's own text: its placeholders blanked (what a proposal must not copy)."""
    return fill_template(section, {name: " " for name in template_fields(section)})


def _sections(text: str) -> dict[str, str]:
    headers = list(_HEADER.finditer(text))
    return {
        h.group(1): text[h.end() : headers[i + 1].start() if i + 1 < len(headers) else None].strip()
        for i, h in enumerate(headers)
    }
