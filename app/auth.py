"""Who is asking: the session cookie, role checks on every route, and CSRF tokens."""

import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from sqlmodel import Session, select

from app.models import Role, User, UserSession
from app.security import (
    burn_password_check,
    csrf_token_for,
    login_csrf_token_for,
    new_token,
    token_digest,
    tokens_match,
    verify_password,
)
from app.session_dep import SessionDep
from app.settings import get_settings
from app.timeutil import utcnow

SESSION_COOKIE = "cai_session"
# A random value for the sign-in form's CSRF token, before there is a session to bind it to.
CSRF_COOKIE = "cai_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class NotSignedIn(Exception):
    """Handled by the app: pages redirect to the sign-in form, htmx requests are told to."""


class PasswordChangeRequired(Exception):
    """Handled by the app: pages redirect to the password form, htmx requests are told to."""


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None:
        # The same work as for a real account, so the answer's timing tells nothing.
        burn_password_check(password)
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        return None
    return user


def client_address(request: Request) -> str:
    # uvicorn puts the X-Forwarded-For address here only for proxies it trusts
    # (--forwarded-allow-ips), so a client cannot pick its own throttle bucket.
    return request.client.host if request.client else "unknown"


def start_session(*, session: Session, user: User, response: Response) -> None:
    settings = get_settings()
    token = new_token()
    assert user.id is not None
    session.add(
        UserSession(
            token_hash=token_digest(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(hours=settings.SESSION_HOURS),
        )
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
    )
    # The CSRF token now derives from the new session; the pre-session value is spent.
    response.delete_cookie(CSRF_COOKIE)


def end_session(*, session: Session, request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        row = session.exec(
            select(UserSession).where(UserSession.token_hash == token_digest(token))
        ).first()
        if row is not None:
            session.delete(row)
    response.delete_cookie(SESSION_COOKIE)
    # The next sign-in form gets a fresh pre-session value, so no token outlives the session.
    response.delete_cookie(CSRF_COOKIE)


def current_user_or_none(request: Request, session: SessionDep) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    row = session.exec(
        select(UserSession).where(UserSession.token_hash == token_digest(token))
    ).first()
    if row is None or row.expires_at < utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    # For the page header: a copy of the row's values, read now, since an error page renders
    # after this request's session has closed (and a commit has expired the row).
    request.state.user = User.model_validate(user)
    return user


def require_role(minimum: Role, *, before_password_change: bool = False) -> Callable[..., User]:
    """A user of at least `minimum` role, who has replaced any one-time password.

    `before_password_change` lets a user who must still change their password through: only
    the password form itself uses it.
    """

    def dependency(
        request: Request, user: Annotated[User | None, Depends(current_user_or_none)]
    ) -> User:
        if user is None:
            raise NotSignedIn()
        if user.must_change_password and not before_password_change:
            if request.method in SAFE_METHODS:
                raise PasswordChangeRequired()
            raise HTTPException(
                403, "choose your own password first (at /account/password), then try again"
            )
        if not Role(user.role).at_least(minimum):
            raise HTTPException(403, f"this needs the {minimum.value} role; you are {user.role}")
        return user

    dependency.minimum_role = minimum  # type: ignore[attr-defined]
    return dependency


Viewer = Annotated[User, Depends(require_role(Role.VIEWER))]
Reviewer = Annotated[User, Depends(require_role(Role.REVIEWER))]
Author = Annotated[User, Depends(require_role(Role.AUTHOR))]
Admin = Annotated[User, Depends(require_role(Role.ADMIN))]
# Any signed-in user, also one who must still replace a one-time password.
PasswordOwner = Annotated[User, Depends(require_role(Role.VIEWER, before_password_change=True))]
OptionalUser = Annotated[User | None, Depends(current_user_or_none)]


def csrf_seed(request: Request) -> str:
    """The random value behind this browser's CSRF token; middleware sets the cookie if new."""
    seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_seed", None)
    if seed is None:
        seed = secrets.token_urlsafe(24)
        request.state.new_csrf_seed = seed
    return seed


def csrf_token(request: Request) -> str:
    session_token = request.cookies.get(SESSION_COOKIE)
    if session_token:
        return csrf_token_for(get_settings().SECRET_KEY, session_token)
    return login_csrf_token_for(get_settings().SECRET_KEY, csrf_seed(request))


def expected_csrf_token(cookies: Mapping[str, str], secret_key: str) -> str | None:
    """The token a request with these cookies must carry: bound to the session if there is
    one, else (the sign-in form) to the pre-session value; None when there is neither."""
    session_token = cookies.get(SESSION_COOKIE)
    if session_token:
        return csrf_token_for(secret_key, session_token)
    seed = cookies.get(CSRF_COOKIE)
    return login_csrf_token_for(secret_key, seed) if seed else None


async def verify_csrf(request: Request) -> None:
    """Every state-changing request carries the token, in a header (htmx) or a form field."""
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    expected = expected_csrf_token(request.cookies, get_settings().SECRET_KEY)
    if expected is None or not tokens_match(expected, given):
        raise HTTPException(
            403, "the form's security token is missing or stale: reload the page and try again"
        )
