"""A chunk: one slice of a chunked run (generation, pairs, labelling) that any worker claims."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, Text, UniqueConstraint, event
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
    # len(item_ids), as a column: the polled progress sums it in SQL without reading the ids.
    size: int = 0
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


@event.listens_for(Chunk, "before_insert")
def _count_items(_mapper: Any, _connection: Any, chunk: Chunk) -> None:
    chunk.size = len(chunk.item_ids)
