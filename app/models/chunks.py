"""A chunk: one slice of a chunked run (generation, pairs, labelling) that any worker claims."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.columns import enum_column_type


class ChunkStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_undone(self) -> bool:
        return self in (ChunkStatus.QUEUED, ChunkStatus.RUNNING)


class Chunk(SQLModel, table=True):
    """The items (prompt or pair ids) of one task; claimed by a conditional UPDATE with a lease."""

    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_chunk_job_index"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("job.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    index: int
    item_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: ChunkStatus = Field(
        default=ChunkStatus.QUEUED,
        sa_type=enum_column_type(ChunkStatus),
        index=True,
    )
    # Claims so far: more than one means a worker died (or its lease ran out) and it was retried.
    attempts: int = 0
    lease_expires_at: datetime | None = None
    worker: str = Field(default="", max_length=255)
    celery_task_id: str | None = Field(default=None, max_length=64)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Steps inside the chunk (e.g. generation calls), so a running chunk shows its progress.
    steps_done: int = 0
    steps_total: int | None = None
    message: str = Field(default="", max_length=500)
