"""The job table's domain side: storing a job row and the queries on it.

Shared by the web app (which launches jobs, app.jobs) and the worker's command line (which runs a
job in its own process), so it imports no web code and sends nothing to a broker.
"""

from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.audit import record_event
from app.celery_config import TASKS
from app.models import Job, JobStatus, User
from app.timeutil import utcnow


def create_job(
    *,
    session: Session,
    kind: str,
    parameters: dict[str, Any],
    user: User | None,
    reviews_needed: int = 1,
) -> Job:
    """Stores a queued job on its stage's queue, with its audit event, and commits."""
    _, queue_name = TASKS[kind]
    job = Job(
        kind=kind,
        queue=queue_name,
        parameters=parameters,
        created_by_id=user.id if user else None,
        reviews_needed=reviews_needed,
    )
    session.add(job)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="job.launch",
        object_type="job",
        object_id=job.id,
        kind=kind,
    )
    session.commit()
    return job


def mark_lost_jobs(*, session: Session, lost_after_seconds: int) -> int:
    """Running jobs whose worker stopped sending heartbeats become lost, never running for ever."""
    cutoff = utcnow() - timedelta(seconds=lost_after_seconds)
    statement = (
        update(Job)
        .where(col(Job.status) == JobStatus.RUNNING, col(Job.heartbeat_at) < cutoff)
        .values(
            status=JobStatus.LOST,
            finished_at=utcnow(),
            error=(
                f"the worker stopped reporting for over {lost_after_seconds} s "
                "(it died or lost its connection)"
            ),
        )
    )
    count = session.exec(statement).rowcount
    session.commit()
    return int(count or 0)


def list_jobs(*, session: Session, limit: int = 100, status: JobStatus | None = None) -> list[Job]:
    statement = select(Job).order_by(col(Job.id).desc()).limit(limit)
    if status is not None:
        statement = statement.where(Job.status == status)
    return list(session.exec(statement))


def runs_with_counts(
    *, session: Session, job_id: Any, kind: str, include_empty: bool = False
) -> list[tuple[Job, int]]:
    """Jobs of one kind, newest first, with how many rows of a table each stored.

    `job_id` is that table's job column (Trace.job_id, say); `include_empty` keeps the jobs that
    stored none yet.
    """
    counts = sa_select(col(job_id), func.count().label("n")).group_by(col(job_id)).subquery()
    rows = session.execute(
        sa_select(Job, func.coalesce(counts.c.n, 0))
        .join(counts, counts.c.job_id == Job.id, isouter=include_empty)
        .where(col(Job.kind) == kind)
        .order_by(col(Job.id).desc())
    ).all()
    return [(job, int(n)) for job, n in rows]
