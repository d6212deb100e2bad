import pytest
from pydantic import ValidationError

from app.settings import PLACEHOLDER_SECRET_KEY, Settings


def test_the_placeholder_secret_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(ENVIRONMENT="production", _env_file=None)  # type: ignore[call-arg]
    assert (
        Settings(ENVIRONMENT="production", SECRET_KEY="x" * 40, _env_file=None).SECRET_KEY
        == "x" * 40
    )  # type: ignore[call-arg]
    assert Settings(ENVIRONMENT="development", _env_file=None).SECRET_KEY == PLACEHOLDER_SECRET_KEY  # type: ignore[call-arg]


def test_defaults_need_no_server(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DATABASE_URL", "BROKER_URL"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings(DATA_DIR=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == f"sqlite:///{tmp_path}/cai.sqlite"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path}/broker.sqlite"
    redis = Settings(BROKER_URL="redis://127.0.0.1:6379/0", _env_file=None)  # type: ignore[call-arg]
    assert redis.broker_url == "redis://127.0.0.1:6379/0"


def test_session_cookies_are_secure_by_default_in_production_only() -> None:
    def secure(**values: object) -> bool:
        return Settings(SECRET_KEY="x" * 40, _env_file=None, **values).session_cookie_secure  # type: ignore[arg-type]

    assert secure(ENVIRONMENT="production") is True
    assert secure(ENVIRONMENT="production", SESSION_COOKIE_SECURE="") is True
    assert secure(ENVIRONMENT="production", SESSION_COOKIE_SECURE="false") is False
    assert secure(ENVIRONMENT="development") is False
    assert secure(ENVIRONMENT="development", SESSION_COOKIE_SECURE=True) is True
