"""Chunked runs' recovery: the sweeper's queries and commands (worker/sweeper.py runs them).

Like app/chunks.py, every change is one conditional UPDATE, so sweepers racing on a row (one per
worker) have one winner.
"""

from datetime import datetime

from sqlalchemy import exists, update
from sqlmodel import Session, col, select

from app.chunks import cancel_queued_chunks, end_job, note_progress, rowcount
from app.models import Chunk, ChunkStatus, Job, JobStatus


def expired_chunks(session: Session, now: datetime) -> list[Chunk]:
    return list(
        session.exec(
            select(Chunk).where(
                Chunk.status == ChunkStatus.RUNNING, col(Chunk.lease_expires_at) < now
            )
        )
    )


def requeue_expired(session: Session, now: datetime, max_attempts: int) -> list[Chunk]:
    """Running chunks whose lease ran out (their worker died) are queued again, or, after
    `max_attempts` claims, failed with their job. Returns the re-queued ones. Commits."""
    requeued = []
    for chunk in expired_chunks(session, now):
        lost = f"worker {chunk.worker} stopped renewing its lease (attempt {chunk.attempts})"
        if chunk.attempts >= max_attempts:
            error = f"chunk {chunk.index} failed after {chunk.attempts} attempts: {lost}"
            won = session.exec(
                update(Chunk)
                .where(
                    col(Chunk.id) == chunk.id,
                    col(Chunk.status) == ChunkStatus.RUNNING,
                    col(Chunk.lease_expires_at) < now,
                )
                .values(status=ChunkStatus.FAILED, finished_at=now, error=error, message=lost)
            )
            if rowcount(won):
                cancel_queued_chunks(session, chunk.job_id)
                end_job(session, chunk.job_id, JobStatus.FAILED, error=error, message=error[:500])
            session.commit()
            continue
        won = session.exec(
            update(Chunk)
            .where(
                col(Chunk.id) == chunk.id,
                col(Chunk.status) == ChunkStatus.RUNNING,
                col(Chunk.lease_expires_at) < now,
            )
            .values(
                status=ChunkStatus.QUEUED,
                lease_expires_at=None,
                celery_task_id=None,
                error=lost,
                message=f"re-queued: {lost}"[:500],
            )
        )
        if rowcount(won):
            note_progress(session, chunk.id or 0)
        session.commit()
        if rowcount(won):
            session.refresh(chunk)
            requeued.append(chunk)
    return requeued


def unsent_chunks(session: Session) -> list[tuple[Chunk, str]]:
    """Queued chunks of running jobs that no message carries (a send failed), with their queue."""
    rows = session.exec(
        select(Chunk, Job.queue)
        .join(Job, col(Job.id) == Chunk.job_id)
        .where(
            Chunk.status == ChunkStatus.QUEUED,
            col(Chunk.celery_task_id).is_(None),
            Job.status == JobStatus.RUNNING,
            col(Job.cancel_requested).is_(False),
        )
    ).all()
    return [(chunk, queue) for chunk, queue in rows]


def settled_jobs(session: Session) -> list[Job]:
    """Running chunked jobs with no chunk left running: all done (their finisher died or lost
    the database between storing its chunk and ending the job), or cancelled and stopped."""
    chunked = exists().where(col(Chunk.job_id) == Job.id)
    open_chunk = exists().where(
        col(Chunk.job_id) == Job.id, col(Chunk.status) == ChunkStatus.RUNNING
    )
    not_done = exists().where(col(Chunk.job_id) == Job.id, col(Chunk.status) != ChunkStatus.DONE)
    return list(
        session.exec(
            select(Job).where(
                col(Job.status) == JobStatus.RUNNING,
                chunked,
                ~open_chunk,
                (col(Job.cancel_requested).is_(True)) | ~not_done,
            )
        )
    )
