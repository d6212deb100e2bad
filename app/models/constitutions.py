from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.columns import enum_column_type
from app.timeutil import utcnow


class VersionState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Constitution(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    description: str = Field(default="", max_length=2000)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ConstitutionVersion(SQLModel, table=True):
    """A draft while it is edited; numbered and immutable once published."""

    __tablename__ = "constitution_version"
    __table_args__ = (UniqueConstraint("constitution_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    constitution_id: int = Field(foreign_key="constitution.id", index=True)
    # None while a draft: numbers are given out in order at publication.
    number: int | None = None
    state: VersionState = Field(default=VersionState.DRAFT, sa_type=enum_column_type(VersionState))
    system_prompt: str = Field(default="", sa_column=Column(Text, nullable=False))
    note: str = Field(default="", max_length=2000)
    based_on_id: int | None = Field(default=None, foreign_key="constitution_version.id")
    source_format: str = Field(default="", max_length=32)
    # What an imported file needs to be written back exactly (see app.recipe.formats).
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Optimistic concurrency for the version's own fields (system prompt, few-shots).
    lock_version: int = 1
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow)
    published_by_id: int | None = Field(default=None, foreign_key="user.id")
    published_at: datetime | None = None

    @property
    def is_draft(self) -> bool:
        return self.state == VersionState.DRAFT

    @property
    def label(self) -> str:
        return "draft" if self.number is None else f"v{self.number}"


class Principle(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("version_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="constitution_version.id", index=True, ondelete="CASCADE")
    position: int
    key: str = Field(max_length=64)
    critique_request: str = Field(sa_column=Column(Text, nullable=False))
    revision_request: str = Field(sa_column=Column(Text, nullable=False))
    comparison_instruction: str = Field(default="", sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    # A principle a reviewer suggested from what they saw in a trace.
    suggested_from_trace_id: int | None = Field(default=None, foreign_key="trace.id")
    # Optimistic concurrency: a save names the lock_version it was loaded at.
    lock_version: int = 1
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow)


class FewShotConversation(SQLModel, table=True):
    __tablename__ = "few_shot"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="constitution_version.id", index=True, ondelete="CASCADE")
    position: int
    kind: str = Field(default="critique-revision", max_length=32)
    title: str = Field(default="", max_length=200)
    messages: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
