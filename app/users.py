"""Commands on user accounts."""

import re
from collections.abc import Iterable

from sqlmodel import Session, col, select

from app.audit import record_event
from app.models import Role, User
from app.security import MIN_PASSWORD_LENGTH, hash_password

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


def change_role(*, session: Session, user: User, role: Role, is_active: bool, actor: User) -> None:
    before = {"role": user.role, "is_active": user.is_active}
    user.role = role
    user.is_active = is_active
    session.add(user)
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
