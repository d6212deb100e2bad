"""The sweeper. A job that is not chunked: a dead worker's job is queued and sent again (it
waits for a worker, so its page keeps polling), up to CHUNK_MAX_ATTEMPTS times, then it fails.
A chunked job that stopped moving: its first queued chunk is sent again, once a window."""

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Chunk, ChunkStatus, Job, JobStatus
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


def test_a_chunked_job_that_stopped_moving_has_its_first_queued_chunk_sent_again(
    engine: Engine, session: Session
) -> None:
    # A Redis restart lost the message a worker had reserved: the chunk stays queued, sent,
    # and nothing else of the job runs. Redis would hand the message back only after a day.
    settings = get_settings()
    quiet = timedelta(seconds=settings.CHUNK_LEASE_SECONDS)
    start = utcnow()
    job = Job(kind="generate", queue="cpu", status=JobStatus.RUNNING, started_at=start)
    session.add(job)
    session.commit()
    assert job.id is not None
    done = Chunk(
        job_id=job.id,
        index=0,
        item_ids=[1],
        status=ChunkStatus.DONE,
        started_at=start,
        finished_at=start,
        celery_task_id="m-0",
    )
    lost = [
        Chunk(job_id=job.id, index=i, item_ids=[i + 1], celery_task_id=f"m-{i}") for i in (1, 2)
    ]
    session.add_all([done, *lost])
    session.commit()
    sent: list[list[int]] = []

    def send(task: str, args: list[int], queue: str) -> str:
        sent.append(args)
        return f"again-{len(sent)}"

    memory: dict[int, datetime] = {}
    # Within the quiet window the job may just be waiting for a worker: left alone.
    assert sweep_once(engine, send, settings, start + quiet / 2, memory).stalled_chunks == 0
    later = start + quiet + timedelta(seconds=1)
    assert sweep_once(engine, send, settings, later, memory).stalled_chunks == 1
    assert sent == [[job.id, 1]]
    # Once a window, not once a pass, while nothing takes it (a busy worker, say).
    assert sweep_once(engine, send, settings, later + quiet / 2, memory).stalled_chunks == 0
    assert sweep_once(engine, send, settings, later + quiet, memory).stalled_chunks == 1
    # A worker takes it: the job moves, nothing is sent.
    lost[0].status, lost[0].started_at = ChunkStatus.RUNNING, later + quiet
    session.add(lost[0])
    session.commit()
    assert sweep_once(engine, send, settings, later + 3 * quiet, memory).stalled_chunks == 0
    assert len(sent) == 2
    # What the sweeper remembers is a window long: a moving job's last send is forgotten.
    assert memory == {}
