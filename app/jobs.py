"""Creating, launching, cancelling and listing jobs: the web app's side of the job table."""

from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.audit import record_event
from app.models import Job, JobStatus, User
from app.queue import JobQueue
from app.timeutil import utcnow
from app.upload_store import remove_upload

# Job kinds and the Celery task that runs each; the web app knows tasks only by name.
TASKS: dict[str, tuple[str, str]] = {
    "import_prompts": ("worker.tasks.run_import_prompts", "cpu"),
    "generate": ("worker.tasks.run_generation", "gpu"),
    "build_dataset": ("worker.tasks.run_build_dataset", "cpu"),
    "train": ("worker.tasks.run_training", "gpu"),
    "reply_pairs": ("worker.tasks.run_reply_pairs", "gpu"),
    "label_pairs": ("worker.tasks.run_labelling", "gpu"),
    "eval_labeller": ("worker.tasks.run_labeller_eval", "gpu"),
}


def launch_job(
    *,
    session: Session,
    queue: JobQueue,
    kind: str,
    parameters: dict[str, Any],
    user: User | None,
    reviews_needed: int = 1,
) -> Job:
    """Stores the job, commits, then enqueues it, so the worker always finds the row."""
    task_name, queue_name = TASKS[kind]
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
    assert job.id is not None
    try:
        job.celery_task_id = queue.send(task_name, job.id, queue_name)
    except Exception as exc:  # the broker is down or misconfigured: say so on the job
        job.status = JobStatus.FAILED
        job.error = f"could not enqueue the job: {exc}"
        job.finished_at = utcnow()
    session.add(job)
    session.commit()
    session.refresh(job)
    return job


RESUMABLE = {"generate", "reply_pairs", "label_pairs"}


def resume_job(*, session: Session, queue: JobQueue, job: Job, user: User) -> Job:
    """Queues an ended job again; it skips the work it already stored."""
    if job.kind not in RESUMABLE or job.status.is_active or job.status == JobStatus.SUCCEEDED:
        raise ValueError(f"a {job.status.value} {job.kind} job cannot be resumed")
    task_name, queue_name = TASKS[job.kind]
    job.status = JobStatus.QUEUED
    job.cancel_requested = False
    job.error = None
    job.finished_at = None
    job.message = "resumed: waiting for a worker"
    session.add(job)
    record_event(
        session=session, actor=user, action="job.resume", object_type="job", object_id=job.id
    )
    session.commit()
    job.celery_task_id = queue.send(task_name, job.id or 0, queue_name)
    session.add(job)
    session.commit()
    session.refresh(job)
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


def request_cancel(*, session: Session, job: Job, user: User) -> Job:
    """A queued job is cancelled at once; a running one stops at its next progress report."""
    if not job.status.is_active:
        return job
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.CANCELLED
        job.finished_at = utcnow()
        job.message = "cancelled before it started"
        # No worker will run it, so none would remove the file it was to read.
        for key in ("path", "helpful_path"):
            remove_upload(job.parameters.get(key))
    job.cancel_requested = True
    session.add(job)
    record_event(
        session=session, actor=user, action="job.cancel", object_type="job", object_id=job.id
    )
    session.commit()
    session.refresh(job)
    return job


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
