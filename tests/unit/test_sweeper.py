"""The sweeper and a job that is not chunked: a dead worker's job is queued and sent again (it
waits for a worker, so its page keeps polling), up to CHUNK_MAX_ATTEMPTS times, then it fails."""

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Job, JobStatus
from app.settings import get_settings
from app.timeutil import utcnow
from worker.sweeper import sweep_once


def test_a_dead_workers_job_is_sent_again_then_failed_after_the_last_attempt(
    engine: Engine, session: Session
) -> None:
    settings = get_settings()
    job = Job(kind="import_prompts", queue="cpu", status=JobStatus.RUNNING, heartbeat_at=utcnow())
    session.add(job)
    session.commit()
    sent: list[tuple[str, list[int], str]] = []

    def send(task: str, args: list[int], queue: str) -> str:
        sent.append((task, args, queue))
        return f"message-{len(sent)}"

    # Still beating: left alone.
    assert sweep_once(engine, send, settings).resent_jobs == 0
    later = utcnow() + timedelta(seconds=settings.JOB_LOST_AFTER_SECONDS + 1)
    for attempt in range(1, settings.CHUNK_MAX_ATTEMPTS + 1):
        assert sweep_once(engine, send, settings, now=later).resent_jobs == 1
        session.refresh(job)
        assert (job.status, job.attempts) == (JobStatus.QUEUED, attempt)
        assert job.status.is_active and "stopped reporting" in job.message
        assert sent[-1] == ("worker.tasks.run_import_prompts", [job.id], "cpu")
        assert job.celery_task_id == f"message-{attempt}"
        # Queued, the broker holds its message: no pass sends it again until a worker runs it.
        assert sweep_once(engine, send, settings, now=later).resent_jobs == 0
        job.status = JobStatus.RUNNING  # a worker took it, and died too
        session.add(job)
        session.commit()
    sweep = sweep_once(engine, send, settings, now=later)
    session.refresh(job)
    assert (sweep.resent_jobs, sweep.failed_jobs) == (0, 1)
    assert job.status == JobStatus.FAILED and "stopped reporting" in (job.error or "")
    assert len(sent) == settings.CHUNK_MAX_ATTEMPTS
