from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class Dataset(SQLModel, table=True):
    """SFT and preference rows built from reviewed runs, written to files by a build job.

    The rows live in the files (JSON lines, Parquet, a `datasets` folder), each with a `trace_id`
    and `source` column; this row keeps how they were made.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    description: str = Field(default="", max_length=2000)
    # "sft+prefs" for datasets built from critique/revision runs; issue 7 adds "ai-feedback".
    kind: str = Field(default="sft+prefs", max_length=32)
    source_job_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Rows per split ("train_sft", "test_sft", "train_prefs", "test_prefs").
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dropped: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    row_count: int = 0
    # Where the build job wrote the files; empty until it has.
    folder: str = Field(default="", max_length=1000)
    card: str = Field(default="", sa_column=Column(Text, nullable=False))
    helpful_source: str = Field(default="", max_length=500)
    status: str = Field(default="building", max_length=16)  # building | ready | failed
    build_job_id: int | None = Field(default=None, foreign_key="job.id")
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class JobMetric(SQLModel, table=True):
    """One logged value of a running job (a training loss, a learning rate) at one step."""

    __tablename__ = "job_metric"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True, ondelete="CASCADE")
    step: int
    name: str = Field(max_length=64)
    value: float
    created_at: datetime = Field(default_factory=utcnow)
