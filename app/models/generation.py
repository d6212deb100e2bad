from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class LanguageModel(SQLModel, table=True):
    """A model the recipe can run: a local transformers model or an OpenAI-compatible server."""

    __tablename__ = "language_model"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    backend: str = Field(max_length=32)  # "transformers" | "openai"
    # transformers: a hub id, a local folder or a GGUF file; openai: the server's model name.
    path: str = Field(max_length=1000)
    base_url: str = Field(default="", max_length=1000)
    # The name of an environment variable holding the API key: the key itself is never stored.
    api_key_env: str = Field(default="", max_length=100)
    description: str = Field(default="", max_length=2000)
    # "policy" models generate; "reward" models (sequence classification) only score.
    kind: str = Field(default="policy", max_length=16)
    # Lineage of a trained model: the model it started from, the data and the training job.
    parent_id: int | None = Field(default=None, foreign_key="language_model.id")
    dataset_id: int | None = Field(default=None, foreign_key="dataset.id")
    job_id: int | None = Field(default=None, foreign_key="job.id")
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    # An OpenAI-compatible server's log-probability check, as the worker last found it
    # (worker.backends.server_probe.ServerProbe.to_json): how it scores, and why.
    server_probe: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Trace(SQLModel, table=True):
    """One prompt's way through the recipe in one generation job; each step is a TraceStep."""

    __table_args__ = (
        # A retried or resumed job skips the prompts it stored: the database holds one per prompt.
        UniqueConstraint("job_id", "prompt_id"),
        # Keyset pages of one run, newest first, with or without a review-status filter.
        Index("ix_trace_job_id_id", "job_id", "id"),
        Index("ix_trace_job_status_id", "job_id", "review_status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    constitution_version_id: int = Field(foreign_key="constitution_version.id", index=True)
    model_id: int = Field(foreign_key="language_model.id")
    initial_reply: str = Field(sa_column=Column(Text, nullable=False))
    initial_tokens: int = 0
    initial_seconds: float = 0.0
    final_reply: str = Field(sa_column=Column(Text, nullable=False))
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Kept up to date by each review, so lists filter by them without joining the reviews:
    # "pending" (too few reviews yet), "approved", "rejected", or "mixed" (reviewers disagree).
    review_status: str = Field(default="pending", max_length=16, index=True)
    review_count: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class Review(SQLModel, table=True):
    """One reviewer's judgement of one trace's final revision."""

    __table_args__ = (UniqueConstraint("trace_id", "reviewer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    trace_id: int = Field(foreign_key="trace.id", index=True)
    reviewer_id: int = Field(foreign_key="user.id", index=True)
    verdict: str = Field(max_length=16)  # "approve" | "reject"
    # A reviewer's corrected final revision; the model's own stays on the trace beside it.
    corrected_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    comment: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class TraceStep(SQLModel, table=True):
    __tablename__ = "trace_step"
    __table_args__ = (UniqueConstraint("trace_id", "round"),)

    id: int | None = Field(default=None, primary_key=True)
    trace_id: int = Field(foreign_key="trace.id", index=True, ondelete="CASCADE")
    round: int
    principle_id: int | None = Field(default=None, foreign_key="principle.id")
    principle_key: str = Field(max_length=64, index=True)
    critique_request: str = Field(sa_column=Column(Text, nullable=False))
    critique: str = Field(sa_column=Column(Text, nullable=False))
    revision_request: str = Field(sa_column=Column(Text, nullable=False))
    revision: str = Field(sa_column=Column(Text, nullable=False))
    critique_tokens: int = 0
    revision_tokens: int = 0
    critique_seconds: float = 0.0
    revision_seconds: float = 0.0
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
