"""CSRF tokens are bound to the session (and, before sign-in, to a pre-session cookie)."""

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from app.models import Role, User
from tests.conftest import PASSWORD


def token_on_page(client: TestClient, url: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text)
    assert found, f"no CSRF token on {url}"
    return found.group(1)


def sign_in_from_page(client: TestClient, username: str) -> None:
    token = token_on_page(client, "/login")
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.text


def accepted(client: TestClient, token: str) -> bool:
    # A wrong current password is a 400 past the CSRF check, a 403 before it.
    status = client.post("/account/password", data={"current": "x", "csrf_token": token})
    assert status.status_code in (400, 403), status.text
    return status.status_code == 400


def test_another_browsers_cookie_and_token_pair_is_refused(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    attacker = make_client()
    token = token_on_page(attacker, "/login")
    planted = next(cookie for cookie in attacker.cookies.jar if cookie.name == "cai_csrf")
    victim = make_client()
    sign_in_from_page(victim, "author")
    # Planting the attacker's cookie in the victim's browser does not make the token good.
    if "cai_csrf" in victim.cookies:
        victim.cookies.delete("cai_csrf")
    victim.cookies.set("cai_csrf", planted.value or "", domain=planted.domain)
    assert not accepted(victim, token)
    assert accepted(victim, token_on_page(victim, "/account/password"))


def test_the_token_changes_at_sign_in_and_sign_out(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client()
    before = token_on_page(client, "/login")
    sign_in_from_page(client, "author")
    assert "cai_csrf" not in client.cookies  # the pre-session value is spent
    during = token_on_page(client, "/account/password")
    assert during != before
    assert not accepted(client, before)
    assert accepted(client, during)

    assert client.post("/logout", data={"csrf_token": during}).status_code == 303
    after = token_on_page(client, "/login")
    assert after not in (before, during)
    # A token from the last session is worth nothing in the next user's.
    sign_in_from_page(client, "viewer")
    assert not accepted(client, during)
    assert accepted(client, token_on_page(client, "/account/password"))


def test_a_session_token_cannot_sign_in_someone_else(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    signed_in = make_client()
    sign_in_from_page(signed_in, "author")
    session_token = token_on_page(signed_in, "/account/password")
    other = make_client()
    other.get("/login")
    response = other.post(
        "/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": session_token}
    )
    assert response.status_code == 403
