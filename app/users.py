"""Commands on user accounts."""

import re
from collections.abc import Iterable

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.audit import record_event
from app.models import Role, User, UserSession
from app.security import MIN_PASSWORD_LENGTH, hash_password, new_one_time_password, token_digest

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")


def validate_new_user(
    *, session: Session, username: str, password: str, role: str
) -> dict[str, str]:
    """Form errors by field; empty when the user can be created."""
    errors: dict[str, str] = {}
    if not USERNAME_PATTERN.match(username):
        errors["username"] = "2 to 64 letters, digits, or _ . @ -"
    elif session.exec(select(User).where(User.username == username)).first() is not None:
        errors["username"] = f"'{username}' is taken."
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if role not in {r.value for r in Role}:
        errors["role"] = f"Choose one of: {', '.join(r.value for r in Role)}."
    return errors


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role,
    actor: User | None,
    must_change_password: bool = False,
) -> User:
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        username=username,
        role=role.value,
    )
    return user


def end_sessions(*, session: Session, user: User, keep_token: str | None = None) -> None:
    """Signs the user out everywhere, except the browser whose session token is `keep_token`."""
    statement = delete(UserSession).where(col(UserSession.user_id) == user.id)
    if keep_token is not None:
        statement = statement.where(col(UserSession.token_hash) != token_digest(keep_token))
    session.exec(statement)


def change_password(
    *, session: Session, user: User, password: str, current_token: str | None
) -> None:
    """Whoever knew the old password may hold other sessions: only this browser's stays."""
    user.password_hash = hash_password(password)
    user.must_change_password = False
    session.add(user)
    end_sessions(session=session, user=user, keep_token=current_token)
    record_event(
        session=session, actor=user, action="user.password", object_type="user", object_id=user.id
    )


def reset_password(*, session: Session, user: User, actor: User) -> str:
    """Gives the user a one-time password, to be changed at the next sign-in; returns it."""
    one_time = new_one_time_password()
    user.password_hash = hash_password(one_time)
    user.must_change_password = True
    session.add(user)
    end_sessions(session=session, user=user)
    record_event(
        session=session,
        actor=actor,
        action="user.reset_password",
        object_type="user",
        object_id=user.id,
        username=user.username,
    )
    return one_time


def change_role(*, session: Session, user: User, role: Role, is_active: bool, actor: User) -> None:
    before = {"role": user.role, "is_active": user.is_active}
    user.role = role
    user.is_active = is_active
    session.add(user)
    if not is_active:
        # Otherwise re-enabling the account would bring its old sessions back.
        end_sessions(session=session, user=user)
    record_event(
        session=session,
        actor=actor,
        action="user.update",
        object_type="user",
        object_id=user.id,
        before=before,
        after={"role": role.value, "is_active": is_active},
    )


def usernames(*, session: Session, ids: Iterable[int] | None = None) -> dict[int | None, str]:
    """User names by id, for pages that show who did what; all users, or only `ids`."""
    statement = select(User)
    if ids is not None:
        statement = statement.where(col(User.id).in_(list(ids)))
    return {user.id: user.username for user in session.exec(statement)}


def username_of(*, session: Session, user_id: int | None, default: str) -> str:
    user = session.get(User, user_id) if user_id else None
    return user.username if user else default
