"""Chunked runs' recovery: the sweeper's queries and commands (worker/sweeper.py runs them).

Like app/chunks.py, every change is one conditional UPDATE, so sweepers racing on a row (one per
worker) have one winner.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, update
from sqlalchemy.orm import aliased
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


def _queued_of_running_jobs(*conditions: Any) -> Any:
    """Queued chunks of running jobs not asked to stop, with their job's queue, that also meet
    `conditions`."""
    return (
        select(Chunk, Job.queue)
        .join(Job, col(Job.id) == Chunk.job_id)
        .where(
            Chunk.status == ChunkStatus.QUEUED,
            Job.status == JobStatus.RUNNING,
            col(Job.cancel_requested).is_(False),
            *conditions,
        )
    )


def unsent_chunks(session: Session) -> list[tuple[Chunk, str]]:
    """Queued chunks of running jobs that no message carries (a send failed), with their queue."""
    rows = session.exec(_queued_of_running_jobs(col(Chunk.celery_task_id).is_(None))).all()
    return [(chunk, queue) for chunk, queue in rows]


def stalled_chunks(session: Session, now: datetime, quiet: timedelta) -> list[tuple[Chunk, str]]:
    """For each running job where nothing has moved for `quiet` (no chunk running, none started
    or finished since, yet some queued and sent), its first queued chunk and its queue.

    A message can be lost after it was sent: a worker that had reserved it loses its broker
    connection (a Redis restart), and Redis hands an unacknowledged message back only after
    its visibility timeout, a day. Sending one chunk again restarts the job; a duplicate
    message, if the first was not lost after all, finds the chunk claimed and does nothing."""
    cutoff = now - quiet
    other = aliased(Chunk)
    moving = exists().where(
        col(other.job_id) == Job.id,
        or_(
            col(other.status) == ChunkStatus.RUNNING,
            col(other.started_at) >= cutoff,
            col(other.finished_at) >= cutoff,
        ),
    )
    rows = session.exec(
        _queued_of_running_jobs(
            col(Chunk.celery_task_id).is_not(None), col(Job.started_at) < cutoff, ~moving
        ).order_by(col(Chunk.job_id), col(Chunk.index))
    ).all()
    first: dict[int, tuple[Chunk, str]] = {}
    for chunk, queue in rows:
        first.setdefault(chunk.job_id, (chunk, queue))
    return list(first.values())


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
