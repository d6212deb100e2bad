from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.columns import enum_column_type
from app.recipe.evaluation import SuitePurpose
from app.timeutil import utcnow


class PromptSet(SQLModel, table=True):
    __tablename__ = "prompt_set"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    description: str = Field(default="", max_length=2000)
    # Where the prompts came from: the uploaded file's name, "built-in" (the example set),
    # "built-in suite" (the example evaluation suites), or "sample".
    source: str = Field(default="", max_length=500)
    source_format: str = Field(default="", max_length=16)
    prompt_count: int = 0
    duplicates_dropped: int = 0
    parent_id: int | None = Field(default=None, foreign_key="prompt_set.id")
    sample_seed: int | None = None
    # Set when the set is an evaluation suite: what its prompts test (None: not a suite).
    purpose: SuitePurpose | None = Field(
        default=None, sa_type=enum_column_type(SuitePurpose), nullable=True
    )
    import_job_id: int | None = Field(default=None, foreign_key="job.id")
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class Prompt(SQLModel, table=True):
    # One prompt per normalised text in a set: the database enforces the de-duplication.
    __table_args__ = (UniqueConstraint("prompt_set_id", "content_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt_set_id: int = Field(foreign_key="prompt_set.id", index=True, ondelete="CASCADE")
    position: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    # Earlier turns as chat messages, for multi-turn red-teaming; None when single-turn.
    context: list[dict[str, str]] | None = Field(default=None, sa_column=Column(JSON))
    content_hash: str = Field(max_length=64)
    source_line: int | None = None
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
