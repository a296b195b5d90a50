"""How the command line speaks: one JSON object on stdout with ``--json``, notes on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
