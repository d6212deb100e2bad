from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from app.models.columns import enum_column_type
from app.timeutil import utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # The worker stopped writing heartbeats: it died, or lost its database connection.
    LOST = "lost"

    @property
    def is_active(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(SQLModel, table=True):
    """One unit of background work. The UI reads this row, never Celery's result backend."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64, index=True)
    queue: str = Field(max_length=16)
    status: JobStatus = Field(
        default=JobStatus.QUEUED, sa_type=enum_column_type(JobStatus), index=True
    )
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    progress_done: int = 0
    progress_total: int | None = None
    message: str = Field(default="", max_length=500)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cancel_requested: bool = False
    # For generation runs: how many reviewers must judge each trace (a run setting).
    reviews_needed: int = 1
    celery_task_id: str | None = Field(default=None, max_length=64)
    worker: str | None = Field(default=None, max_length=255)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    # Times the sweeper sent a lost non-chunked job again (chunks count their own attempts).
    attempts: int = 0

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return (end - self.started_at).total_seconds()
