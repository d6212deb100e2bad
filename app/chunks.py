"""Chunked runs: the commands and queries on chunk rows, shared by the worker and the web app.

Celery delivers a chunk's message at least once; these make its effect happen once. Every state
change is one conditional UPDATE, so two workers (or two sweepers) racing on a row have exactly one
winner, and a redelivered message for a chunk that is running or done changes nothing.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import case, exists, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.models import Chunk, ChunkStatus, Job, JobStatus
from app.timeutil import utcnow

UNDONE = (ChunkStatus.QUEUED, ChunkStatus.RUNNING)


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def job_chunks(session: Session, job_id: int) -> list[Chunk]:
    return list(
        session.exec(select(Chunk).where(Chunk.job_id == job_id).order_by(col(Chunk.index)))
    )


def plan_chunks(session: Session, job: Job, item_ids: Sequence[int], size: int) -> list[Chunk]:
    """Queues the job's undone work: failed and cancelled chunks again, and new chunks (after the
    last index) for the items no chunk holds. Returns the queued chunks; the caller commits.

    A chunk keeps its index across tries, so a stage that seeds by chunk index (reply pairs)
    draws a resumed chunk as its first try would have."""
    assert job.id is not None and size >= 1
    chunks = job_chunks(session, job.id)
    held = {item for chunk in chunks for item in chunk.item_ids}
    for chunk in chunks:
        if chunk.status in (ChunkStatus.FAILED, ChunkStatus.CANCELLED):
            chunk.status = ChunkStatus.QUEUED
            chunk.attempts = 0
            chunk.error = None
            chunk.lease_expires_at = None
            chunk.celery_task_id = None
            chunk.steps_done, chunk.steps_total, chunk.message = 0, None, ""
            session.add(chunk)
    fresh = [item for item in item_ids if item not in held]
    next_index = max((chunk.index for chunk in chunks), default=-1) + 1
    for offset, start in enumerate(range(0, len(fresh), size)):
        items = fresh[start : start + size]
        chunk = Chunk(job_id=job.id, index=next_index + offset, item_ids=items, size=len(items))
        session.add(chunk)
        chunks.append(chunk)
    session.flush()
    return [chunk for chunk in chunks if chunk.status == ChunkStatus.QUEUED]


def claim_chunk(session: Session, chunk_id: int, worker: str, lease_seconds: float) -> Chunk | None:
    """Takes a queued chunk of a running job (and commits); None when it was not queued."""
    now = utcnow()
    job_runs = exists().where(
        col(Job.id) == Chunk.job_id,
        col(Job.status) == JobStatus.RUNNING,
        col(Job.cancel_requested).is_(False),
    )
    result = session.exec(
        update(Chunk)
        .where(col(Chunk.id) == chunk_id, col(Chunk.status) == ChunkStatus.QUEUED, job_runs)
        .values(
            status=ChunkStatus.RUNNING,
            attempts=col(Chunk.attempts) + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            worker=worker[:255],
            started_at=now,
            finished_at=None,
            error=None,
            steps_done=0,
            message="started",
        )
    )
    if rowcount(result) == 0:
        session.commit()
        return None
    note_progress(session, chunk_id)
    session.commit()
    # The commit expired every row this session holds: this reads the claimed row afresh.
    return session.get(Chunk, chunk_id)


def renew_lease(session: Session, chunk: Chunk, lease_seconds: float, **values: Any) -> bool:
    """Extends this claim's lease (and sets `values`: steps, message) in the caller's transaction;
    False when the chunk is no longer ours (the sweeper re-queued it, or it ended)."""
    result = session.exec(
        update(Chunk)
        .where(
            col(Chunk.id) == chunk.id,
            col(Chunk.status) == ChunkStatus.RUNNING,
            col(Chunk.attempts) == chunk.attempts,
        )
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds), **values)
    )
    return rowcount(result) == 1


def extend_lease(session: Session, chunk: Chunk, lease_seconds: float, **values: Any) -> bool:
    """renew_lease, committed (the heartbeat's own transaction)."""
    ours = renew_lease(session, chunk, lease_seconds, **values)
    session.commit()
    return ours


def finish_chunk(session: Session, chunk: Chunk, *, seconds: float, message: str = "") -> bool:
    """Marks the chunk done and counts its items on the job, in the caller's transaction (the one
    that stores the chunk's results; the caller commits). False when another try finished it."""
    result = session.exec(
        update(Chunk)
        .where(col(Chunk.id) == chunk.id, col(Chunk.status).in_(UNDONE))
        .values(
            status=ChunkStatus.DONE,
            finished_at=utcnow(),
            seconds=seconds,
            lease_expires_at=None,
            steps_done=func.coalesce(col(Chunk.steps_total), col(Chunk.steps_done)),
            message=message[:500],
        )
    )
    if rowcount(result) == 0:
        return False
    session.exec(
        update(Job)
        .where(col(Job.id) == chunk.job_id)
        .values(
            progress_done=col(Job.progress_done) + len(chunk.item_ids),
            message=chunks_message(session, chunk.job_id),
        )
    )
    return True


def chunks_message(session: Session, job_id: int) -> str:
    """The job's message while its chunks run, from the chunk rows: "3 of 12 chunks done ·
    2 running" (and how many were retried, when some were)."""
    rows = session.execute(
        sa_select(
            col(Chunk.status), func.count(), func.sum(case((col(Chunk.attempts) > 1, 1), else_=0))
        )
        .where(col(Chunk.job_id) == job_id)
        .group_by(Chunk.status)
    ).all()
    counts = {ChunkStatus(status): int(n) for status, n, _ in rows}
    retried = sum(int(r or 0) for _, _, r in rows)
    parts = [f"{counts.get(ChunkStatus.DONE, 0)} of {sum(counts.values())} chunks done"]
    if counts.get(ChunkStatus.RUNNING):
        parts.append(f"{counts[ChunkStatus.RUNNING]} running")
    if retried:
        parts.append(f"{retried} retried")
    return " · ".join(parts)


def note_progress(session: Session, chunk_id: int) -> None:
    """Writes the chunk count message on the chunk's job while it runs (the caller commits)."""
    job_id = session.execute(
        sa_select(col(Chunk.job_id)).where(col(Chunk.id) == chunk_id)
    ).scalar_one()
    session.exec(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status) == JobStatus.RUNNING)
        .values(message=chunks_message(session, job_id))
    )


def end_job(session: Session, job_id: int, status: JobStatus, **values: Any) -> bool:
    result = session.exec(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status) == JobStatus.RUNNING)
        .values(status=status, finished_at=utcnow(), **values)
    )
    return rowcount(result) == 1


def cancel_queued_chunks(session: Session, job_id: int) -> int:
    """Queued chunks of the job will not run (the caller commits)."""
    result = session.exec(
        update(Chunk)
        .where(col(Chunk.job_id) == job_id, col(Chunk.status) == ChunkStatus.QUEUED)
        .values(status=ChunkStatus.CANCELLED, finished_at=utcnow(), message="cancelled")
    )
    return rowcount(result)


def fail_chunk(session: Session, chunk: Chunk, error: str) -> bool:
    """The chunk failed for good: so does its job, with the chunk's error; its queued chunks will
    not run. Commits; False when the job had ended already."""
    session.exec(
        update(Chunk)
        .where(col(Chunk.id) == chunk.id)
        .values(
            status=ChunkStatus.FAILED,
            finished_at=utcnow(),
            lease_expires_at=None,
            error=error,
            message=error[:500],
        )
    )
    cancel_queued_chunks(session, chunk.job_id)
    ended = end_job(session, chunk.job_id, JobStatus.FAILED, error=error, message=error[:500])
    session.commit()
    return ended


def requeue_chunk(session: Session, chunk: Chunk, error: str) -> None:
    """A transient error: the chunk waits for another claim (its attempts count). Commits."""
    session.exec(
        update(Chunk)
        .where(col(Chunk.id) == chunk.id, col(Chunk.status) == ChunkStatus.RUNNING)
        .values(
            status=ChunkStatus.QUEUED,
            lease_expires_at=None,
            celery_task_id=None,
            error=error,
            message=f"retrying: {error}"[:500],
        )
    )
    note_progress(session, chunk.id or 0)
    session.commit()


def stop_chunk(session: Session, chunk: Chunk) -> None:
    """A running chunk saw its job's cancel request at a step. Commits."""
    session.exec(
        update(Chunk)
        .where(col(Chunk.id) == chunk.id, col(Chunk.status) == ChunkStatus.RUNNING)
        .values(status=ChunkStatus.CANCELLED, finished_at=utcnow(), message="cancelled")
    )
    session.commit()


def _no_chunk(job_id: int, statuses: Sequence[ChunkStatus]) -> Any:
    return ~exists().where(col(Chunk.job_id) == job_id, col(Chunk.status).in_(statuses))


def finish_job_if_done(
    session: Session, job_id: int, result: dict[str, Any] | None = None, message: str = ""
) -> bool:
    """The job succeeds when no chunk is left undone: one conditional UPDATE, so of the workers
    finishing its last chunks exactly one is the finisher. Commits."""
    not_done = [s for s in ChunkStatus if s != ChunkStatus.DONE]
    values: dict[str, Any] = {"status": JobStatus.SUCCEEDED, "finished_at": utcnow()}
    if result is not None:
        values["result"] = result
    if message:
        values["message"] = message[:500]
    outcome = session.exec(
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.status) == JobStatus.RUNNING,
            col(Job.cancel_requested).is_(False),
            _no_chunk(job_id, not_done),
        )
        .values(**values)
    )
    session.commit()
    return rowcount(outcome) == 1


def cancel_job_if_stopped(session: Session, job_id: int) -> bool:
    """A job asked to stop ends cancelled once none of its chunks runs. Commits."""
    outcome = session.exec(
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.status) == JobStatus.RUNNING,
            col(Job.cancel_requested).is_(True),
            _no_chunk(job_id, [ChunkStatus.RUNNING]),
        )
        .values(status=JobStatus.CANCELLED, finished_at=utcnow(), message="cancelled")
    )
    session.commit()
    return rowcount(outcome) == 1


def all_chunks_done(session: Session, job_id: int) -> bool:
    """No chunk of the job is left undone (a cheap test before the job's summary is read)."""
    not_done = [s for s in ChunkStatus if s != ChunkStatus.DONE]
    left = session.execute(sa_select(_no_chunk(job_id, not_done))).scalar_one()
    return bool(left)


def has_chunks(session: Session, job_id: int) -> bool:
    count = session.execute(
        sa_select(func.count()).select_from(Chunk).where(col(Chunk.job_id) == job_id)
    ).scalar_one()
    return bool(count)


def done_pace(session: Session, job_id: int) -> tuple[int, float | None]:
    """The job's chunk count, and the seconds per item its finished chunks took (None: none)."""
    done = col(Chunk.status) == ChunkStatus.DONE
    chunks, items, seconds = session.execute(
        sa_select(
            func.count(),
            func.sum(case((done & (col(Chunk.seconds) > 0), col(Chunk.size)), else_=0)),
            func.sum(case((done & (col(Chunk.seconds) > 0), col(Chunk.seconds)), else_=0.0)),
        ).where(col(Chunk.job_id) == job_id)
    ).one()
    return int(chunks), (float(seconds) / int(items) if items else None)


def running_chunks(session: Session, job_id: int) -> int:
    count = session.execute(
        sa_select(func.count())
        .select_from(Chunk)
        .where(col(Chunk.job_id) == job_id, col(Chunk.status) == ChunkStatus.RUNNING)
    ).scalar_one()
    return int(count)
