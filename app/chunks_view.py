"""What a run's page shows of its chunks: the progress summed over them (app/chunks.py) and a
bounded list of the ones worth a look. Read-only: the page polls it every second."""

from dataclasses import dataclass, field

from sqlalchemy import Float, case, cast, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.models import Chunk, ChunkStatus


@dataclass(frozen=True)
class ChunkProgress:
    """A run's progress in items: done chunks, plus the share of each running chunk's steps."""

    items_done: int
    items_running: float
    items_total: int
    counts: dict[ChunkStatus, int] = field(default_factory=dict)
    retried: int = 0

    @property
    def done(self) -> int:
        return self.items_done + int(self.items_running)


def job_chunk_progress(session: Session, job_id: int) -> ChunkProgress:
    """One aggregate query, not the chunk rows: the page polls it every second, and a run of
    40,000 prompts has thousands of chunks."""
    is_running = (col(Chunk.status) == ChunkStatus.RUNNING) & (col(Chunk.steps_total) > 0)
    running_share = case(
        (is_running & (col(Chunk.steps_done) >= col(Chunk.steps_total)), col(Chunk.size)),
        (
            is_running,
            cast(col(Chunk.size) * col(Chunk.steps_done), Float) / col(Chunk.steps_total),
        ),
        else_=0,
    )
    rows = session.execute(
        sa_select(
            col(Chunk.status),
            func.count(),
            func.sum(col(Chunk.size)),
            func.sum(case((col(Chunk.attempts) > 1, 1), else_=0)),
            func.sum(running_share),
        )
        .where(col(Chunk.job_id) == job_id)
        .group_by(Chunk.status)
    ).all()
    counts = dict.fromkeys(ChunkStatus, 0)
    done = total = retried = 0
    running = 0.0
    for status, n, size, retries, share in rows:
        counts[ChunkStatus(status)] = int(n)
        total += int(size or 0)
        retried += int(retries or 0)
        running += float(share or 0)
        if status == ChunkStatus.DONE:
            done += int(size or 0)
    return ChunkProgress(
        items_done=done, items_running=running, items_total=total, counts=counts, retried=retried
    )


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
