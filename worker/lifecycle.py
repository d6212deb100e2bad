"""Keeps the Job row true while a task runs: start, heartbeats, progress, cancel, end, failure."""

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.models import Job, JobStatus
from app.settings import get_settings
from app.timeutil import utcnow


class JobCancelled(Exception):
    """Raised from a progress report when someone asked the job to stop."""


class JobSkipped(Exception):
    """The job was cancelled or finished before this task got to it."""


ProgressFn = Callable[[int, int | None, str], None]


@dataclass
class JobContext:
    job_id: int
    parameters: dict[str, Any]
    progress: ProgressFn
    result: dict[str, Any]


def _update(engine: Engine, job_id: int, **values: Any) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        for key, value in values.items():
            setattr(job, key, value)
        session.add(job)
        session.commit()
        session.refresh(job)
        return job


def _heartbeat(engine: Engine, job_id: int, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        # A missed beat is harmless; the next one may succeed.
        with contextlib.suppress(Exception):
            _update(engine, job_id, heartbeat_at=utcnow())


def claim_job(
    session: Session, job_id: int, *, task_id: str | None, lost_after_seconds: float
) -> bool:
    """Marks the job running if no worker runs it: one conditional UPDATE, so a message delivered
    twice starts it once. It takes a queued or lost job, or a running one whose heartbeat is older
    than `lost_after_seconds` (its worker died before the sweeper noticed). Commits."""
    job = session.get(Job, job_id)
    if job is None:
        raise LookupError(f"job {job_id} does not exist")
    now = utcnow()
    stale = now - timedelta(seconds=lost_after_seconds)
    waiting = or_(
        col(Job.status).in_([JobStatus.QUEUED, JobStatus.LOST]),
        and_(
            col(Job.status) == JobStatus.RUNNING,
            or_(col(Job.heartbeat_at).is_(None), col(Job.heartbeat_at) < stale),
        ),
    )
    result = session.exec(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.cancel_requested).is_(False), waiting)
        .values(
            status=JobStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            error=None,
            celery_task_id=task_id,
            worker=socket.gethostname(),
            message="started",
        )
    )
    session.commit()
    return bool(result.rowcount)


@contextmanager
def running_job(
    engine: Engine, job_id: int, *, task_id: str | None, heartbeat_seconds: float
) -> Iterator[JobContext]:
    """Marks the job running, beats while the body runs, and records how it ended."""
    with Session(engine) as session:
        if not claim_job(
            session,
            job_id,
            task_id=task_id,
            lost_after_seconds=get_settings().JOB_LOST_AFTER_SECONDS,
        ):
            raise JobSkipped(f"job {job_id} is not waiting for a worker")
        job = session.get(Job, job_id)
        assert job is not None
        parameters = dict(job.parameters)

    def progress(done: int, total: int | None, message: str) -> None:
        job = _update(
            engine,
            job_id,
            progress_done=done,
            progress_total=total,
            message=message[:500],
            heartbeat_at=utcnow(),
        )
        if job.cancel_requested:
            raise JobCancelled()

    stop = threading.Event()
    beater = threading.Thread(
        target=_heartbeat, args=(engine, job_id, heartbeat_seconds, stop), daemon=True
    )
    beater.start()
    context = JobContext(job_id=job_id, parameters=parameters, progress=progress, result={})
    try:
        yield context
    except JobCancelled as cancelled:
        # What the job kept before it stopped (a training checkpoint, say) stays on the row.
        _update(
            engine,
            job_id,
            status=JobStatus.CANCELLED,
            finished_at=utcnow(),
            message=str(cancelled) or "cancelled",
            result=context.result,
        )
    except Exception as exc:
        _update(
            engine,
            job_id,
            status=JobStatus.FAILED,
            finished_at=utcnow(),
            # The traceback goes to the worker's log (Celery logs the re-raised error);
            # the row keeps what a person can act on.
            error=str(exc) or type(exc).__name__,
            message=str(exc)[:500] or type(exc).__name__,
        )
        raise
    else:
        _update(
            engine, job_id, status=JobStatus.SUCCEEDED, finished_at=utcnow(), result=context.result
        )
    finally:
        stop.set()
