"""What a run's page shows of its chunks: the progress summed over them (app/chunks.py) and a
bounded list of the ones worth a look. Read-only: the page polls it every second."""

from dataclasses import dataclass

from sqlalchemy import case
from sqlmodel import Session, col, select

from app.chunks import ChunkProgress, job_chunk_progress
from app.models import Chunk, ChunkStatus

# A run of 40,000 prompts has thousands of chunks; the polled fragment lists at most this
# many (running, failed and retried first) and counts the rest.
CHUNKS_SHOWN = 40


@dataclass
class ChunkBoard:
    progress: ChunkProgress
    shown: list[Chunk]  # in index order

    @property
    def counts(self) -> dict[str, int]:
        """Chunks by status, only the statuses present."""
        return {status.value: n for status, n in self.progress.counts.items() if n}

    @property
    def total(self) -> int:
        return sum(self.progress.counts.values())

    @property
    def hidden(self) -> int:
        return self.total - len(self.shown)


def chunk_board(*, session: Session, job_id: int, limit: int = CHUNKS_SHOWN) -> ChunkBoard | None:
    """The job's chunks for its page, or None for a job that has none (not chunked)."""
    progress = job_chunk_progress(session, job_id)
    if not any(progress.counts.values()):
        return None
    # Running first, then what went wrong, then what is left to do; done ones fill the rest.
    priority = case(
        (col(Chunk.status) == ChunkStatus.RUNNING, 0),
        (col(Chunk.status) == ChunkStatus.FAILED, 1),
        (col(Chunk.attempts) > 1, 2),
        (col(Chunk.status) == ChunkStatus.QUEUED, 3),
        else_=4,
    )
    shown = session.exec(
        select(Chunk)
        .where(Chunk.job_id == job_id)
        .order_by(priority, col(Chunk.index))
        .limit(limit)
    ).all()
    return ChunkBoard(progress=progress, shown=sorted(shown, key=lambda chunk: chunk.index))
