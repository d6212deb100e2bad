"""Sign-in throttling: per account and per client address, shared by every web process."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.auth import authenticate
from app.db import engine_for
from app.models import AuditEvent, Role, SignInFailure, User
from app.settings import get_settings
from tests.conftest import PASSWORD, csrf


@pytest.fixture
def limits(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Small limits, so a test reaches them in a few tries."""
    monkeypatch.setenv("SIGN_IN_FAILURES_PER_ACCOUNT", "3")
    monkeypatch.setenv("SIGN_IN_FAILURES_PER_ADDRESS", "6")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def attempt(client: TestClient, username: str, password: str) -> Any:
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )


def test_an_account_is_throttled_after_its_failures_even_for_the_right_password(
    limits: None, make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client()
    for _ in range(3):
        assert attempt(client, "author", "wrong").status_code == 400
    # Another spelling of the same name shares the account's budget.
    throttled = attempt(client, "Author", PASSWORD)
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["retry-after"])
    assert 0 < retry_after <= get_settings().SIGN_IN_WINDOW_SECONDS
    assert "Too many failed sign-ins" in throttled.text
    assert 'value="Author"' in throttled.text
    assert attempt(client, "author", PASSWORD).status_code == 429
    assert "cai_session" not in client.cookies
    # Other accounts from the same address are not locked out by one account's failures.
    assert attempt(client, "viewer", PASSWORD).status_code == 303


def test_the_account_signs_in_again_after_the_window(
    limits: None,
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
) -> None:
    client = make_client()
    for _ in range(3):
        attempt(client, "author", "wrong")
    assert attempt(client, "author", PASSWORD).status_code == 429
    # Let the window pass by moving the failures back in time instead of waiting.
    window = timedelta(seconds=get_settings().SIGN_IN_WINDOW_SECONDS + 1)
    session.exec(update(SignInFailure).values(at=col(SignInFailure.at) - window))
    session.commit()
    assert attempt(client, "author", PASSWORD).status_code == 303
    # A success starts the account afresh: one new failure is far from the limit.
    fresh = make_client()
    assert attempt(fresh, "author", "wrong").status_code == 400
    assert attempt(fresh, "author", PASSWORD).status_code == 303


def test_an_address_is_throttled_across_accounts(
    limits: None, make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client()
    for name in ("a1", "a2", "a3", "a4", "a5", "a6"):
        assert attempt(client, name, "guess").status_code == 400
    refused = attempt(client, "viewer", PASSWORD)
    assert refused.status_code == 429 and "retry-after" in refused.headers


def test_two_web_processes_share_the_count(
    limits: None, make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    first = make_client()
    for _ in range(3):
        attempt(first, "author", "wrong")
    # A second app with its own engine stands in for another uvicorn worker on the same database.
    engine_for.cache_clear()
    second = make_client()
    assert attempt(second, "author", PASSWORD).status_code == 429


def test_failed_sign_ins_are_audited_without_an_actor(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client()
    attempt(client, "author", "wrong")
    attempt(client, "nobody-here", "wrong")
    events = session.exec(
        select(AuditEvent)
        .where(AuditEvent.action == "user.login_failed")
        .order_by(col(AuditEvent.id))
    ).all()
    assert [(e.actor_id, e.details["username"]) for e in events] == [
        (None, "author"),
        (None, "nobody-here"),
    ]


def test_unknown_and_disabled_users_cost_a_password_check_too(
    monkeypatch: pytest.MonkeyPatch, session: Session, users: dict[Role, User]
) -> None:
    checks: list[str] = []
    real_verify = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, hash: str, password: str) -> bool:
        checks.append(password)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    users[Role.VIEWER].is_active = False
    session.add(users[Role.VIEWER])
    session.commit()
    assert authenticate(session=session, username="nobody", password="p1") is None
    assert authenticate(session=session, username="viewer", password=PASSWORD) is None
    assert authenticate(session=session, username="author", password="p3") is None
    assert checks == ["p1", PASSWORD, "p3"]
