from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from app.models.columns import enum_column_type
from app.timeutil import utcnow


class Role(StrEnum):
    """Ordered from most to least powerful; each role may do what the ones below it may."""

    ADMIN = "admin"
    AUTHOR = "author"
    REVIEWER = "reviewer"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]

    def at_least(self, other: "Role") -> bool:
        return self.rank >= other.rank


ROLE_RANK = {Role.VIEWER: 0, Role.REVIEWER: 1, Role.AUTHOR: 2, Role.ADMIN: 3}


class UserBase(SQLModel):
    username: str = Field(max_length=64, unique=True, index=True)
    role: Role = Field(default=Role.VIEWER, sa_type=enum_column_type(Role))
    is_active: bool = True


class User(UserBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=256)
    must_change_password: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class UserSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class SignInFailure(SQLModel, table=True):
    """One wrong password, kept for the throttle window.

    In the database rather than in memory, so every web process counts the same failures.
    """

    __tablename__ = "sign_in_failure"

    id: int | None = Field(default=None, primary_key=True)
    # The username as typed, lower-cased: "Admin" and "admin" share one budget.
    username: str = Field(max_length=64, index=True)
    client_address: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
