from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import AuditEvent, Role, User, UserSession
from app.settings import get_settings
from tests.conftest import PASSWORD, csrf, post, sign_in


def test_sign_in_sets_an_httponly_samesite_cookie(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client()
    response = client.post(
        "/login", data={"username": "author", "password": PASSWORD, "csrf_token": csrf(client)}
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "cai_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/prompt-sets").status_code == 200


def test_wrong_password_re_renders_the_form_with_the_username(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client()
    response = client.post(
        "/login", data={"username": "author", "password": "nope", "csrf_token": csrf(client)}
    )
    assert response.status_code == 400
    assert "Wrong username or password" in response.text
    assert 'value="author"' in response.text
    assert client.get("/prompt-sets").status_code == 303


def test_a_post_without_the_csrf_token_is_refused(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.ADMIN)
    response = client.post(
        "/admin/users", data={"username": "mallory", "password": "x" * 12, "role": "admin"}
    )
    assert response.status_code == 403
    assert "security token" in response.text
    forged = client.post(
        "/admin/users",
        data={"username": "mallory", "password": "x" * 12, "role": "admin", "csrf_token": "f" * 64},
    )
    assert forged.status_code == 403
    assert session.exec(select(User).where(User.username == "mallory")).first() is None


def test_sign_in_itself_needs_the_csrf_token(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client()
    client.get("/login")
    assert (
        client.post("/login", data={"username": "author", "password": PASSWORD}).status_code == 403
    )


def test_sign_out_ends_the_session_on_the_server(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.VIEWER)
    stolen = client.cookies["cai_session"]
    assert post(client, "/logout").status_code == 303
    assert session.exec(select(UserSession)).all() == []
    replay = make_client()
    replay.cookies.set("cai_session", stolen)
    assert replay.get("/prompt-sets").status_code == 303


def test_next_only_goes_to_local_paths(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client()
    data = {
        "username": "viewer",
        "password": PASSWORD,
        "csrf_token": csrf(client),
        "next": "//evil.example/x",
    }
    assert client.post("/login", data=data).headers["location"] == "/"


def test_one_time_password_must_be_changed(
    make_client: Callable[..., TestClient], session: Session, users: dict[Role, User]
) -> None:
    admin = users[Role.ADMIN]
    admin.must_change_password = True
    session.add(admin)
    session.commit()
    client = make_client()
    response = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf(client)}
    )
    assert response.headers["location"] == "/account/password"
    short = post(
        client, "/account/password", data={"current": PASSWORD, "new": "short", "repeat": "short"}
    )
    assert short.status_code == 400 and "at least 8" in short.text
    done = post(
        client,
        "/account/password",
        data={"current": PASSWORD, "new": "a new long one", "repeat": "a new long one"},
    )
    assert done.status_code == 303
    fresh = make_client()
    sign_in(fresh, "admin", "a new long one")
    session.refresh(admin)
    assert admin.must_change_password is False
    assert (
        session.exec(select(AuditEvent).where(AuditEvent.action == "user.password")).first()
        is not None
    )


def test_admin_adds_a_user_and_changes_a_role_with_audit_events(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.ADMIN)
    bad = post(
        client,
        "/admin/users",
        data={"username": "new person", "password": "short", "role": "author"},
    )
    assert bad.status_code == 400
    assert (
        'value="new person"' in bad.text
        and "letters, digits" in bad.text
        and "at least 8" in bad.text
    )
    taken = post(
        client,
        "/admin/users",
        data={"username": "viewer", "password": "long enough", "role": "author"},
    )
    assert "taken" in taken.text

    assert (
        post(
            client,
            "/admin/users",
            data={"username": "carol", "password": "long enough", "role": "author"},
        ).status_code
        == 303
    )
    carol = session.exec(select(User).where(User.username == "carol")).one()
    assert carol.role == Role.AUTHOR
    sign_in(make_client(), "carol", "long enough")

    assert (
        post(
            client, f"/admin/users/{carol.id}", data={"role": "reviewer", "is_active": "true"}
        ).status_code
        == 303
    )
    session.refresh(carol)
    assert carol.role == Role.REVIEWER
    actions = [
        e.action
        for e in session.exec(select(AuditEvent).where(AuditEvent.object_id == str(carol.id)))
    ]
    assert "user.create" in actions and "user.update" in actions
    audit_page = client.get("/admin/audit")
    assert "user.update" in audit_page.text and "reviewer" in audit_page.text


def test_an_admin_cannot_demote_themselves(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.ADMIN)
    admin = users[Role.ADMIN]
    response = post(
        client, f"/admin/users/{admin.id}", data={"role": "viewer", "is_active": "true"}
    )
    assert response.status_code == 400 and "cannot demote" in response.text
    session.refresh(admin)
    assert admin.role == Role.ADMIN


def test_a_disabled_user_is_signed_out(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.VIEWER)
    admin = make_client(Role.ADMIN)
    post(admin, f"/admin/users/{users[Role.VIEWER].id}", data={"role": "viewer"})
    assert client.get("/prompt-sets").status_code == 303


def test_production_sets_secure_cookies_by_default(
    monkeypatch: pytest.MonkeyPatch,
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    get_settings.cache_clear()
    client = make_client(base_url="https://testserver")
    assert "secure" in client.get("/login").headers["set-cookie"].lower()
    response = client.post(
        "/login", data={"username": "author", "password": PASSWORD, "csrf_token": csrf(client)}
    )
    assert response.status_code == 303
    session_cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("cai_session=")
    )
    assert "secure" in session_cookie.lower()
