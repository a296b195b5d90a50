"""Fixtures for served-model tests: a real OpenAI-compatible server on the embedded model, and a
tiny server that answers 401 to everything. Imported into conftest.py.

- ``llama_server``: llama-cpp-python's server (``python -m llama_cpp.server``) on the embedded
  SmolLM2 GGUF, on a free local port, started once per session and stopped at its end; the model
  is listed as ``smollm2``. Skipped only where ``llama_cpp`` is not installed (``make install``
  installs it).
- ``unauthorized_url``: the base URL of a server that answers every request with 401.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVED_MODEL_ID = "smollm2"
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class LlamaServer:
    """A running llama-cpp-python server: ``base_url`` (ending in /v1) and the model id."""

    base_url: str
    model_id: str
    log: Path


def free_port() -> int:
    """A local TCP port nothing listens on (free when asked; closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S} s; log: {log}")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-cpp-python's OpenAI-compatible server on the embedded model (one per session)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    from promptscout.model.embedded import gguf_path

    gguf = gguf_path()
    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", SERVED_MODEL_ID,
        "--host", "127.0.0.1", "--port", str(port),
        "--logits_all", "true", "--n_ctx", "2048", "--n_threads", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(base_url, process, log)
        yield LlamaServer(base_url=base_url, model_id=SERVED_MODEL_ID, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        body = json.dumps({"error": {"message": "Invalid API key", "type": "auth"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="session")
def unauthorized_url() -> Iterator[str]:
    """The base URL of a local server that answers 401 to every request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
