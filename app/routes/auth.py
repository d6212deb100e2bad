from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.audit import record_event
from app.auth import (
    SESSION_COOKIE,
    OptionalUser,
    PasswordOwner,
    authenticate,
    client_address,
    end_session,
    start_session,
)
from app.security import MIN_PASSWORD_LENGTH, verify_password
from app.session_dep import SessionDep
from app.settings import get_settings
from app.templating import render
from app.throttle import MAX_KEY_LENGTH, clear_account, record_failure, retry_after, wait_in_words
from app.users import change_password as store_new_password

router = APIRouter()


def _safe_next(next_url: str) -> str:
    # Only local paths: never send a signed-in user to another site.
    return next_url if next_url.startswith("/") and not next_url.startswith("//") else "/"


@router.get("/login")
def login_form(request: Request, user: OptionalUser, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "username": ""})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    settings = get_settings()
    address = client_address(request)
    form = {"next": _safe_next(next), "username": username}
    tried = {"username": username[:MAX_KEY_LENGTH], "address": address}
    wait = retry_after(session=session, username=username, address=address, settings=settings)
    if wait is not None:
        # Not even checked: while throttled, the right password is refused like a wrong one.
        record_event(
            session=session, actor=None, action="user.login_throttled", object_type="user", **tried
        )
        session.commit()
        error = f"Too many failed sign-ins. Try again in {wait_in_words(wait)}."
        response = render(request, "login.html", {**form, "error": error}, status_code=429)
        response.headers["Retry-After"] = str(wait)
        return response
    user = authenticate(session=session, username=username, password=password)
    if user is None:
        record_failure(session=session, username=username, address=address, settings=settings)
        record_event(
            session=session, actor=None, action="user.login_failed", object_type="user", **tried
        )
        session.commit()
        context = {**form, "error": "Wrong username or password."}
        return render(request, "login.html", context, status_code=400)
    clear_account(session=session, username=username)
    target = "/account/password" if user.must_change_password else _safe_next(next)
    response = RedirectResponse(target, status_code=303)
    start_session(session=session, user=user, response=response)
    record_event(
        session=session, actor=user, action="user.login", object_type="user", object_id=user.id
    )
    session.commit()
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    response = RedirectResponse("/login", status_code=303)
    end_session(session=session, request=request, response=response)
    if user is not None:
        record_event(
            session=session, actor=user, action="user.logout", object_type="user", object_id=user.id
        )
    session.commit()
    return response


@router.get("/account/password")
def password_form(request: Request, user: PasswordOwner) -> Response:
    return render(request, "password.html")


@router.post("/account/password")
def change_password(
    request: Request,
    session: SessionDep,
    user: PasswordOwner,
    current: Annotated[str, Form()] = "",
    new: Annotated[str, Form()] = "",
    repeat: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}
    if not verify_password(user.password_hash, current):
        errors["current"] = "This is not your current password."
    if len(new) < MIN_PASSWORD_LENGTH:
        errors["new"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    elif new != repeat:
        errors["repeat"] = "The two new passwords differ."
    if errors:
        return render(request, "password.html", {"errors": errors}, status_code=400)
    store_new_password(
        session=session,
        user=user,
        password=new,
        current_token=request.cookies.get(SESSION_COOKIE),
    )
    session.commit()
    return RedirectResponse("/", status_code=303)
