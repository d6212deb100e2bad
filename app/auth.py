"""Who is asking: the session cookie, role checks on every route, and CSRF tokens."""

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from sqlmodel import Session, select

from app.db import SessionDep
from app.models import Role, User, UserSession
from app.security import csrf_token_for, new_token, token_digest, tokens_match, verify_password
from app.settings import get_settings
from app.timeutil import utcnow

SESSION_COOKIE = "cai_session"
CSRF_COOKIE = "cai_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class NotSignedIn(Exception):
    """Handled by the app: pages redirect to the sign-in form, htmx requests are told to."""


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None
    return user


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
        secure=settings.SESSION_COOKIE_SECURE,
    )


def end_session(*, session: Session, request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        row = session.exec(
            select(UserSession).where(UserSession.token_hash == token_digest(token))
        ).first()
        if row is not None:
            session.delete(row)
    response.delete_cookie(SESSION_COOKIE)


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
    request.state.user = user
    return user


def require_role(minimum: Role) -> Callable[..., User]:
    def dependency(user: Annotated[User | None, Depends(current_user_or_none)]) -> User:
        if user is None:
            raise NotSignedIn()
        if not Role(user.role).at_least(minimum):
            raise HTTPException(403, f"this needs the {minimum.value} role; you are {user.role}")
        return user

    dependency.minimum_role = minimum  # type: ignore[attr-defined]
    return dependency


Viewer = Annotated[User, Depends(require_role(Role.VIEWER))]
Reviewer = Annotated[User, Depends(require_role(Role.REVIEWER))]
Author = Annotated[User, Depends(require_role(Role.AUTHOR))]
Admin = Annotated[User, Depends(require_role(Role.ADMIN))]
OptionalUser = Annotated[User | None, Depends(current_user_or_none)]


def csrf_seed(request: Request) -> str:
    """The random value behind this browser's CSRF token; middleware sets the cookie if new."""
    seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_seed", None)
    if seed is None:
        seed = secrets.token_urlsafe(24)
        request.state.new_csrf_seed = seed
    return seed


def csrf_token(request: Request) -> str:
    return csrf_token_for(get_settings().SECRET_KEY, csrf_seed(request))


async def verify_csrf(request: Request) -> None:
    """Every state-changing request carries the token, in a header (htmx) or a form field."""
    if request.method in SAFE_METHODS:
        return
    seed = request.cookies.get(CSRF_COOKIE)
    given = request.headers.get(CSRF_HEADER)
    if given is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    expected = csrf_token_for(get_settings().SECRET_KEY, seed) if seed else None
    if expected is None or not tokens_match(expected, given):
        raise HTTPException(
            403, "the form's security token is missing or stale: reload the page and try again"
        )
