"""Launching, resuming and cancelling jobs: the web app's side of the job table (web-only).

Storing a row and the queries on the table are in app.job_records, which the worker shares.
"""

from typing import Any

from sqlmodel import Session

from app.audit import record_event
from app.celery_config import TASKS
from app.chunks import cancel_queued_chunks, has_chunks, running_chunks
from app.job_records import create_job
from app.models import Job, JobStatus, User
from app.queue import JobQueue
from app.timeutil import utcnow
from app.upload_store import remove_upload

# How the message of a job whose send failed begins (the job stays queued with no task id).
WAITING_FOR_BROKER = "waiting for the broker"


def launch_job(
    *,
    session: Session,
    queue: JobQueue,
    kind: str,
    parameters: dict[str, Any],
    user: User | None,
    reviews_needed: int = 1,
) -> Job:
    """Stores the job, commits, then enqueues it, so the worker always finds the row; when the
    broker cannot take the message, the job stays queued and says it waits for the broker."""
    job = create_job(
        session=session,
        kind=kind,
        parameters=parameters,
        user=user,
        reviews_needed=reviews_needed,
    )
    assert job.id is not None
    task_name, queue_name = TASKS[kind]
    try:
        job.celery_task_id = queue.send(task_name, job.id, queue_name)
    except Exception as exc:  # the broker is down or hangs: the job waits for it
        # Still queued, with no task id: a worker's sweeper sends it once the broker is back.
        job.celery_task_id = None
        job.message = f"{WAITING_FOR_BROKER}: {exc}"
    session.add(job)
    session.commit()
    session.refresh(job)
    return job


# Every kind resumes: a chunked run re-plans its undone items, training resumes from a checkpoint.
RESUMABLE = set(TASKS)
RESUMABLE_STATUSES = {JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.LOST}
# What Resume does, by job kind, as the job page says it.
RESUME_HINTS = {
    "generate": "It skips the prompts it already stored.",
    "reply_pairs": "It skips the prompts that have their two replies.",
    "label_pairs": "It skips the pairs it already labelled.",
    "evaluate": "It skips the prompts it already judged, and reuses stored answers.",
    "train": "It continues from its latest checkpoint (or from the start if it saved none).",
    "rl": "It continues from its latest checkpoint (or from the start if it saved none).",
    "constitution_ab": "It skips the prompts it already judged.",
}


def resume_job(*, session: Session, queue: JobQueue, job: Job, user: User) -> Job:
    """Queues an ended job again; it skips the work it already stored (a chunked run re-plans
    its undone items, training resumes from its checkpoint)."""
    if job.status not in RESUMABLE_STATUSES:
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


def request_cancel(*, session: Session, job: Job, user: User) -> Job:
    """A queued job is cancelled at once; a running one stops at its next progress report (a
    chunked run: its queued chunks at once, the running ones at their next step)."""
    if not job.status.is_active:
        return job
    if job.status == JobStatus.RUNNING and job.id is not None and has_chunks(session, job.id):
        cancel_queued_chunks(session, job.id)
        if not running_chunks(session, job.id):
            job.status = JobStatus.CANCELLED
            job.finished_at = utcnow()
            job.message = "cancelled"
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
