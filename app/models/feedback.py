from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class ReplyPair(SQLModel, table=True):
    """Two sampled replies of one policy model to one prompt, for AI feedback to compare."""

    __tablename__ = "reply_pair"
    # A retried or resumed job skips the prompts it stored: the database holds one per prompt.
    __table_args__ = (UniqueConstraint("job_id", "prompt_id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    model_id: int = Field(foreign_key="language_model.id")
    reply_a: str = Field(sa_column=Column(Text, nullable=False))
    reply_b: str = Field(sa_column=Column(Text, nullable=False))
    tokens_a: int = 0
    tokens_b: int = 0
    seconds: float = 0.0
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Comparison(SQLModel, table=True):
    """A feedback model's judgement of one reply pair under sampled principles."""

    __table_args__ = (
        UniqueConstraint("job_id", "pair_id"),
        Index("ix_comparison_job_id_id", "job_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    pair_id: int = Field(foreign_key="reply_pair.id", index=True)
    constitution_version_id: int = Field(foreign_key="constitution_version.id")
    model_id: int = Field(foreign_key="language_model.id")
    principle_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Normalised probabilities of the options (clamped with chain of thought); None if skipped.
    prob_a: float | None = None
    prob_b: float | None = None
    # Per principle and order: the options' log-probabilities, P(A), and the reasoning.
    details: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    reasoning: str = Field(default="", sa_column=Column(Text, nullable=False))
    label: str = Field(max_length=16)  # "A" | "B" | "tie" | "skipped"
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class HumanLabel(SQLModel, table=True):
    """One person's own choice for a comparison, to measure how far the AI's labels agree."""

    __tablename__ = "human_label"
    __table_args__ = (UniqueConstraint("comparison_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", index=True)
    choice: str = Field(max_length=8)  # "A" | "B" | "tie"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
