"""Opening a backend: for a registered model (the worker's jobs) or for the CLI's own flags.

One place builds a TransformersBackend or an OpenAIBackend, so the worker and `cai generate`
load models the same way; the backends themselves are imported only when one is opened, so the
worker starts without torch until a job needs it.
"""

import os

from sqlmodel import Session

from app.db import get_engine
from app.models import LanguageModel, Role, User
from app.server_access import api_key_env_error, base_url_allowed, base_url_error
from app.settings import Settings, get_settings
from worker.backends.base import Backend


class ServerNotAllowed(ValueError):
    """A model whose server or key variable the operator does not allow; the job fails."""


def open_backend(
    backend: str, path: str, *, base_url: str = "", api_key: str | None = None
) -> Backend:
    """A local transformers model (hub id, folder or GGUF file) or an OpenAI-compatible server.

    Checks nothing: callers decide whether the server may be reached."""
    if backend == "transformers":
        from worker.backends.transformers_backend import TransformersBackend

        return TransformersBackend(path, cache_dir=get_settings().DATA_DIR / "models")
    if backend == "openai":
        from worker.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(base_url, path, api_key=api_key)
    raise ValueError(f"unknown backend '{backend}'")


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
        return open_backend("openai", model.path, base_url=model.base_url, api_key=api_key)
    raise ValueError(f"model '{model.name}' has an unknown backend '{model.backend}'")
