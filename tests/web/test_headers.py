"""Every kind of response carries the CSP and the other security headers."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import Role, User
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def assert_secure(response: object, what: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    policy = headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], (what, policy)
    assert directives.get("style-src") == ["'self'"], (what, policy)
    assert directives.get("object-src") == ["'none'"], (what, policy)
    assert directives.get("frame-ancestors") == ["'none'"], (what, policy)
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, (what, policy)
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, (what, name)


@pytest.fixture
def prompt_set_id(session: Session) -> int:
    made = store_prompt_set(
        session=session,
        name="headers",
        prompts=[ParsedPrompt(text="a question?", context=None, line=1, metadata={})],
    )
    session.commit()
    return made.id or 0


def test_pages_fragments_errors_redirects_and_static_files_carry_the_headers(
    make_client: Callable[..., TestClient], users: dict[Role, User], prompt_set_id: int
) -> None:
    anonymous = make_client()
    assert_secure(anonymous.get("/login"), "sign-in page")
    redirect = anonymous.get("/prompt-sets")
    assert redirect.status_code == 303
    assert_secure(redirect, "redirect to sign in")
    static = anonymous.get("/static/htmx.min.js")
    assert static.status_code == 200
    assert_secure(static, "static file")
    assert_secure(anonymous.get("/healthz"), "JSON")

    client = make_client(Role.ADMIN)
    page = client.get(f"/prompt-sets/{prompt_set_id}")
    assert page.status_code == 200 and "<html" in page.text
    assert_secure(page, "page")
    fragment = client.get(
        f"/prompt-sets/{prompt_set_id}",
        params={"q": "question"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert fragment.text.lstrip().startswith('<section id="results">')
    assert_secure(fragment, "htmx fragment")
    error = client.get("/prompt-sets/999999", headers={"Accept": "text/html"})
    assert error.status_code == 404 and "<html" in error.text
    assert_secure(error, "error page")
    missing = client.get("/static/no-such-file.js")
    assert missing.status_code == 404
    assert_secure(missing, "missing static file")


def test_an_unexpected_error_is_a_500_page_with_the_headers(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client(Role.ADMIN, raise_server_exceptions=False)

    def broken() -> None:
        raise RuntimeError("secret detail")

    client.app.add_api_route("/broken-for-test", broken)  # type: ignore[attr-defined]
    page = client.get("/broken-for-test", headers={"accept": "text/html"})
    assert page.status_code == 500 and "<html" in page.text
    assert "secret detail" not in page.text
    assert_secure(page, "500 page")
    api = client.get("/broken-for-test")
    assert api.status_code == 500 and api.json()["detail"]
    assert_secure(api, "500 JSON")
