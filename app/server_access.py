"""Which inference servers a model may point at, and which environment variables may hold keys.

A registered OpenAI-compatible model names a base URL and the environment variable whose value
the worker sends as `Authorization: Bearer …`. Left open, that lets anyone who may register a
model have the worker send any of its secrets (the admin password, SECRET_KEY, a cloud key) to a
host of their choosing. So the operator decides both: key variables must carry a prefix they
chose, and only admins may point a model at a server outside their allow-list. The web app
checks when a model is registered; the worker checks again before it sends anything.
"""

import re
from urllib.parse import urlsplit

from app.settings import Settings

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def api_key_env_error(name: str, settings: Settings) -> str | None:
    """Why `name` may not hold an API key, or None when the operator allows it."""
    if not name:
        return None
    if not _ENV_NAME.match(name):
        return "The name of an environment variable, such as CAI_API_KEY_VLLM."
    allowed = settings.allowed_api_key_envs
    prefix = settings.API_KEY_ENV_PREFIX
    if name in allowed or (prefix and name.startswith(prefix) and name != prefix):
        return None
    names = f"a name starting with {prefix}" if prefix else "none"
    if allowed:
        names += " or one of " + ", ".join(sorted(allowed))
    return f"{name} is not a variable the operator allows for API keys: use {names}."


def _origin_and_path(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username or parts.password:
        return None  # credentials in the URL would travel to that host too
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default_port, parts.path.rstrip("/")


def base_url_allowed(url: str, settings: Settings) -> bool:
    """True when `url` is on the operator's allow-list (same scheme, host and port, and under
    the listed path)."""
    target = _origin_and_path(url)
    if target is None:
        return False
    for entry in settings.allowed_base_urls:
        allowed = _origin_and_path(entry)
        if allowed is None or allowed[:3] != target[:3]:
            continue
        if target[3] == allowed[3] or target[3].startswith(allowed[3] + "/"):
            return True
    return False


def base_url_error(url: str, *, by_admin: bool, settings: Settings) -> str | None:
    """Why this user may not point a model at `url`, or None."""
    if _origin_and_path(url) is None:
        return (
            "An http:// or https:// address without a user name, such as http://127.0.0.1:8001/v1."
        )
    if by_admin or base_url_allowed(url, settings):
        return None
    return (
        "Only an admin can register a server that is not on the operator's allow-list "
        "(the OPENAI_BASE_URLS setting)."
    )
