"""Opening a backend: for a registered model (the worker's jobs) or for the CLI's own flags.

One place builds a TransformersBackend, a LlamaCppBackend (a GGUF file, as GGUF_BACKEND says)
or an OpenAIBackend, so the worker and `cai generate` load models the same way; the backends
themselves are imported only when one is opened, so the worker starts without torch until a job
needs it.
"""

import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from app.db import get_engine
from app.models import LanguageModel, Role, User
from app.server_access import api_key_env_error, base_url_allowed, base_url_error
from app.settings import Settings, get_settings
from worker.backends.base import Backend, BackendError
from worker.backends.server_probe import ServerProbe

logger = logging.getLogger(__name__)


class ServerNotAllowed(ValueError):
    """A model whose server or key variable the operator does not allow; the job fails."""


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def local_backend(path: str, settings: Settings) -> str:
    """ "llama_cpp" or "transformers" for a local model: GGUF_BACKEND decides for a GGUF file."""
    if not (path.endswith(".gguf") and Path(path).expanduser().is_file()):
        return "transformers"
    if settings.GGUF_BACKEND == "transformers":
        return "transformers"
    if llama_cpp_installed():
        return "llama_cpp"
    if settings.GGUF_BACKEND == "llama_cpp":
        raise BackendError(
            "GGUF_BACKEND is llama_cpp but llama-cpp-python is not installed: run "
            "`make install-llama` (or pip install '.[llama]'), or set GGUF_BACKEND=auto"
        )
    return "transformers"


def open_backend(
    backend: str,
    path: str,
    *,
    base_url: str = "",
    api_key: str | None = None,
    on_probe: Callable[[ServerProbe], None] | None = None,
) -> Backend:
    """A local model (hub id, folder or GGUF file; a GGUF runs on llama.cpp or transformers as
    GGUF_BACKEND says) or an OpenAI-compatible server.

    Checks nothing: callers decide whether the server may be reached."""
    settings = get_settings()
    if backend == "transformers" and local_backend(path, settings) == "llama_cpp":
        backend = "llama_cpp"
    if backend == "llama_cpp":
        from worker.backends.llama_cpp_backend import LlamaCppBackend

        return LlamaCppBackend(path, context_length=settings.LLAMA_CPP_CONTEXT)
    if backend == "transformers":
        from worker.backends.transformers_backend import TransformersBackend

        return TransformersBackend(path, cache_dir=settings.DATA_DIR / "models")
    if backend == "openai":
        from worker.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(base_url, path, api_key=api_key, on_probe=on_probe)
    raise ValueError(f"unknown backend '{backend}'")


def probe_recorder(model_id: int) -> Callable[[ServerProbe], None]:
    """Keeps a server's probe on its model row, for the models page; a database that is away
    costs the record, not the job."""

    def record(probe: ServerProbe) -> None:
        try:
            with Session(get_engine()) as session:
                row = session.get(LanguageModel, model_id)
                if row is not None:
                    row.server_probe = probe.to_json()
                    session.add(row)
                    session.commit()
        except SQLAlchemyError as exc:
            logger.warning("could not record the probe of model %s: %s", model_id, exc)

    return record


def check_server_access(model: LanguageModel, settings: Settings) -> None:
    """The worker's own check before it sends a key anywhere: rows can change after the web
    app checked them, and a model's registrant can lose the admin role."""
    key_error = api_key_env_error(model.api_key_env, settings)
    if key_error:
        raise ServerNotAllowed(f"model '{model.name}': {key_error}")
    if base_url_allowed(model.base_url, settings):
        return
    with Session(get_engine()) as session:
        registrant = session.get(User, model.created_by_id) if model.created_by_id else None
        by_admin = registrant is not None and Role(registrant.role).at_least(Role.ADMIN)
    url_error = base_url_error(model.base_url, by_admin=by_admin, settings=settings)
    if url_error:
        raise ServerNotAllowed(f"model '{model.name}' at {model.base_url}: {url_error}")


def load_backend(model: LanguageModel) -> Backend:
    """The backend of a registered model, after the operator's allow-list check for servers."""
    if model.backend == "transformers":
        return open_backend("transformers", model.path)
    if model.backend == "openai":
        check_server_access(model, get_settings())
        api_key = os.environ.get(model.api_key_env) if model.api_key_env else None
        on_probe = probe_recorder(model.id) if model.id is not None else None
        return open_backend(
            "openai", model.path, base_url=model.base_url, api_key=api_key, on_probe=on_probe
        )
    raise ValueError(f"model '{model.name}' has an unknown backend '{model.backend}'")
