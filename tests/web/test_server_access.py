"""The worker's secrets stay home: key variables and servers are the operator's to allow."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import LanguageModel, Role, User
from app.server_access import api_key_env_error, base_url_allowed
from app.settings import Settings, get_settings
from tests.conftest import post
from worker.backends.loading import ServerNotAllowed, load_backend


def openai_model(**overrides: str) -> dict[str, str]:
    return {
        "name": "served",
        "backend": "openai",
        "path": "m",
        "base_url": "http://127.0.0.1:8001/v1",
        "api_key_env": "CAI_API_KEY_VLLM",
        **overrides,
    }


def settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_only_variables_the_operator_allows_may_hold_keys() -> None:
    default = settings()
    for secret in ("ADMIN_PASSWORD", "SECRET_KEY", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY"):
        error = api_key_env_error(secret, default)
        assert error is not None and "CAI_API_KEY_" in error
    assert api_key_env_error("CAI_API_KEY_", default) is not None
    assert api_key_env_error("CAI_API_KEY_VLLM", default) is None
    assert api_key_env_error("", default) is None
    listed = settings(API_KEY_ENVS="VLLM_KEY, OTHER")
    assert api_key_env_error("VLLM_KEY", listed) is None
    assert api_key_env_error("ADMIN_PASSWORD", listed) is not None


def test_the_allow_list_matches_scheme_host_port_and_path() -> None:
    allowed = settings(OPENAI_BASE_URLS="http://10.0.0.5:8001/v1, https://llm.example.org")
    assert base_url_allowed("http://10.0.0.5:8001/v1", allowed)
    assert base_url_allowed("http://10.0.0.5:8001/v1/", allowed)
    assert base_url_allowed("https://llm.example.org/v1", allowed)
    assert base_url_allowed("https://LLM.example.org:443/v1", allowed)
    for url in (
        "http://10.0.0.5:8002/v1",  # another port
        "https://10.0.0.5:8001/v1",  # another scheme
        "http://10.0.0.5:8001/v10",  # not under /v1
        "http://10.0.0.5:8001",  # above the listed path
        "http://llm.example.org/v1",  # http, not https
        "https://llm.example.org.evil.test/v1",
        "https://user:pw@llm.example.org/v1",
        "not a url",
    ):
        assert not base_url_allowed(url, allowed), url
    assert not base_url_allowed("http://127.0.0.1:8001/v1", settings())


def test_an_author_cannot_point_a_key_at_their_own_host(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    author = make_client(Role.AUTHOR)
    leak = post(
        author,
        "/models",
        data=openai_model(api_key_env="ADMIN_PASSWORD", base_url="http://attacker.test/v1"),
    )
    assert leak.status_code == 400
    assert "ADMIN_PASSWORD is not a variable the operator allows" in leak.text
    assert "Only an admin can register a server" in leak.text
    off_list = post(author, "/models", data=openai_model())
    assert off_list.status_code == 400 and "allow-list" in off_list.text
    assert session.exec(select(LanguageModel)).all() == []
    # An admin may register any server, but still only with an allowed key variable.
    admin = make_client(Role.ADMIN)
    refused = post(admin, "/models", data=openai_model(api_key_env="SECRET_KEY"))
    assert refused.status_code == 400 and "SECRET_KEY is not a variable" in refused.text
    assert post(admin, "/models", data=openai_model()).status_code == 303


def test_an_author_may_register_a_server_on_the_allow_list(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URLS", "http://127.0.0.1:8001/v1")
    get_settings.cache_clear()
    response = post(make_client(Role.AUTHOR), "/models", data=openai_model())
    assert response.status_code == 303
    assert session.exec(select(LanguageModel)).one().created_by_id == users[Role.AUTHOR].id


def stored_model(session: Session, created_by: User, **overrides: str) -> LanguageModel:
    """A row as it might be after the web app checked it: changed in SQL, say."""
    model = LanguageModel(**openai_model(**overrides), created_by_id=created_by.id)
    session.add(model)
    session.commit()
    return model


def test_the_worker_checks_again_before_it_sends_a_key(
    users: dict[Role, User], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_PASSWORD", "the admin's password")
    monkeypatch.setenv("CAI_API_KEY_VLLM", "sk-real")
    get_settings.cache_clear()
    by_admin = stored_model(session, users[Role.ADMIN], api_key_env="ADMIN_PASSWORD")
    with pytest.raises(ServerNotAllowed, match="ADMIN_PASSWORD is not a variable"):
        load_backend(by_admin)
    by_author = stored_model(session, users[Role.AUTHOR], name="author's")
    with pytest.raises(ServerNotAllowed, match="Only an admin"):
        load_backend(by_author)
    # The same row passes once its server is on the list, or when an admin registered it.
    monkeypatch.setenv("OPENAI_BASE_URLS", "http://127.0.0.1:8001/v1")
    get_settings.cache_clear()
    load_backend(by_author).close()
    monkeypatch.delenv("OPENAI_BASE_URLS")
    get_settings.cache_clear()
    load_backend(stored_model(session, users[Role.ADMIN], name="admin's")).close()
