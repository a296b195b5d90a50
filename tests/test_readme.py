"""The README's campaign-file examples are real: every TOML block parses, the full campaign file
validates, and every searcher example builds its searcher's config (unknown options are errors)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from promptscout.config import load_config
from promptscout.searchers import build_config, searcher_class

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_campaign_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_searcher_example_builds(block: str):
    data = tomllib.loads(block)
    for spec in data.get("searchers", []):
        options = {k: v for k, v in spec.items() if k != "type"}
        build_config(searcher_class(spec["type"]), options)


def without_tables(text: str, names: set[str]) -> str:
    """``text`` without its ``[name]`` tables for the given names (each up to the next table)."""
    chunks = re.split(r"(?m)^(?=\[)", text)
    kept = [c for c in chunks if (re.match(r"\[([\w.]+)\]", c) or [None, None])[1] not in names]
    return "".join(kept)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_campaign_section_validates(block: str, tmp_path: Path):
    """Each block validates as a campaign file, completed from the first (full) block."""
    data = tomllib.loads(block)
    head = BLOCKS[0].split("[[searchers]]")[0]  # every table of the full example, no searchers
    if "campaign" in data:
        text = block
    elif "searchers" in data:
        text = head + block
    else:  # lone tables (e.g. [evaluator], [model]) replace the full example's own
        text = without_tables(head, set(data)) + block
        text += "\n[[searchers]]\ntype = 'manual'\ntemplates = ['{text} It was']\n"
    path = tmp_path / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.searchers
