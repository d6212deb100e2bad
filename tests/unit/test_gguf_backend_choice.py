"""GGUF_BACKEND: which backend the worker opens for a registered GGUF file."""

from pathlib import Path

import pytest

import worker.backends.loading as loading
from app.settings import Settings
from worker.backends.base import BackendError


def settings(choice: str) -> Settings:
    return Settings(GGUF_BACKEND=choice, _env_file=None)  # type: ignore[arg-type]


@pytest.fixture
def gguf(tmp_path: Path) -> str:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return str(path)


@pytest.mark.parametrize("installed", [True, False])
def test_auto_takes_llama_cpp_where_installed(
    gguf: str, installed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "llama_cpp_installed", lambda: installed)
    expected = "llama_cpp" if installed else "transformers"
    assert loading.local_backend(gguf, settings("auto")) == expected
    assert loading.local_backend(gguf, settings("transformers")) == "transformers"


def test_llama_cpp_without_the_package_is_a_clear_error(
    gguf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "llama_cpp_installed", lambda: False)
    with pytest.raises(BackendError, match="make install-llama"):
        loading.local_backend(gguf, settings("llama_cpp"))


def test_folders_and_hub_ids_stay_on_transformers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "llama_cpp_installed", lambda: True)
    for path in (str(tmp_path), "HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path / "x.gguf")):
        assert loading.local_backend(path, settings("llama_cpp")) == "transformers"


def test_a_bad_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="GGUF_BACKEND"):
        settings("vllm")
