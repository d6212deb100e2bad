"""Sessions end when they should: a password change, a disable, an admin's password reset."""

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import AuditEvent, Role, User, UserSession
from tests.conftest import PASSWORD, csrf, post, sign_in


def signed_in(client: TestClient) -> bool:
    return client.get("/prompt-sets").status_code == 200


def test_a_password_change_keeps_this_session_and_ends_the_others(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    here = make_client(Role.AUTHOR)
    elsewhere = make_client(Role.AUTHOR)
    changed = post(
        here,
        "/account/password",
        data={"current": PASSWORD, "new": "another long one", "repeat": "another long one"},
    )
    assert changed.status_code == 303
    assert signed_in(here)
    assert not signed_in(elsewhere)


def test_re_enabling_a_user_does_not_bring_their_old_sessions_back(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    viewer = make_client(Role.VIEWER)
    admin = make_client(Role.ADMIN)
    user_id = users[Role.VIEWER].id
    assert post(admin, f"/admin/users/{user_id}", data={"role": "viewer"}).status_code == 303
    assert session.exec(select(UserSession).where(UserSession.user_id == user_id)).all() == []
    enabled = post(admin, f"/admin/users/{user_id}", data={"role": "viewer", "is_active": "true"})
    assert enabled.status_code == 303
    assert not signed_in(viewer)
    sign_in(viewer, "viewer")
    assert signed_in(viewer)


def test_an_admin_resets_a_password_once_and_ends_the_users_sessions(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    author = make_client(Role.AUTHOR)
    admin = make_client(Role.ADMIN)
    target = users[Role.AUTHOR]
    page = post(admin, f"/admin/users/{target.id}/reset-password")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    found = re.search(r'<code class="one-time-password">([^<]+)</code>', page.text)
    assert found, page.text
    one_time = found.group(1)
    assert not signed_in(author)
    assert admin.get("/admin/users").text.count(one_time) == 0  # shown once
    session.refresh(target)
    assert target.must_change_password
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "user.reset_password")).one()
    assert event.actor_id == users[Role.ADMIN].id and event.object_id == str(target.id)
    assert one_time not in str(event.details)

    fresh = make_client()
    response = fresh.post(
        "/login",
        data={"username": "author", "password": PASSWORD, "csrf_token": csrf(fresh)},
    )
    assert response.status_code == 400  # the old password is gone
    sign_in(fresh, "author", one_time)
    assert fresh.get("/prompt-sets").headers["location"] == "/account/password"


def test_an_admin_cannot_reset_their_own_password_here(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    admin = make_client(Role.ADMIN)
    response = post(admin, f"/admin/users/{users[Role.ADMIN].id}/reset-password")
    assert response.status_code == 400 and "your own password" in response.text
    assert signed_in(admin)
    assert post(admin, "/admin/users/999999/reset-password").status_code == 404


def test_a_user_with_a_one_time_password_reaches_only_the_password_form(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    author = users[Role.AUTHOR]
    author.must_change_password = True
    session.add(author)
    session.commit()
    client = make_client(Role.AUTHOR)
    for page in ("/", "/prompt-sets", "/constitutions", "/jobs", "/models"):
        response = client.get(page)
        assert response.status_code == 303, page
        assert response.headers["location"] == "/account/password", page
    htmx = client.get("/jobs", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"] == "/account/password"
    refused = post(client, "/models", data={"name": "m", "backend": "transformers", "path": "p"})
    assert refused.status_code == 403 and "password" in refused.text
    assert client.get("/account/password").status_code == 200
    done = post(
        client,
        "/account/password",
        data={"current": PASSWORD, "new": "my own password", "repeat": "my own password"},
    )
    assert done.status_code == 303
    assert signed_in(client)


def test_a_user_with_a_one_time_password_may_sign_out(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    viewer = users[Role.VIEWER]
    viewer.must_change_password = True
    session.add(viewer)
    session.commit()
    client = make_client(Role.VIEWER)
    assert post(client, "/logout").status_code == 303
    assert session.exec(select(UserSession)).all() == []
