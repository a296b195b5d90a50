"""Light imports: the public API, the config and the searcher registry load without the model
stack, so the CLI, campaign files and plug-in discovery start fast (torch and transformers come
only with the first model or gradient, MLflow only with a campaign's ``[tracking]``). The
import graph itself is checked by ``lint-imports`` (the ``[tool.importlinter]`` contracts in
pyproject.toml), which ``make test`` runs first.

Each import runs in a fresh interpreter: this test session has long since loaded torch.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "mlflow")


@pytest.mark.parametrize("module", ["promptscout.config", "promptscout.searchers", "promptscout"])
def test_light_imports_load_no_model_stack(module):
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []
