"""The sweeper: recovers work whose worker died, with nobody pressing anything.

Every Celery worker runs one (a daemon thread started when the worker is ready); each pass is
conditional UPDATEs, so several sweepers racing on a row have one winner and send one message.
Each pass, every SWEEP_SECONDS:
- running chunks whose lease ran out are queued again and sent (or, after CHUNK_MAX_ATTEMPTS
  claims, failed with their job);
- queued chunks of running jobs that no message carries (a send failed) are sent;
- a running job where nothing moved for CHUNK_LEASE_SECONDS, with chunks queued and sent, has
  its first queued chunk sent again (its message was lost: a worker had reserved it when the
  broker restarted), at most once per CHUNK_LEASE_SECONDS by each sweeper;
- a non-chunked job whose heartbeat is older than JOB_LOST_AFTER_SECONDS is queued and sent
  again (a training job resumes from its checkpoint), or failed after CHUNK_MAX_ATTEMPTS sends.
  It goes back to queued, not lost: it waits for a worker, so its page keeps polling and Cancel
  stops it at once; the broker keeps the message until a worker takes it;
- a queued job whose send failed (the broker was down at launch) is sent again;
- a chunked job with every chunk done is ended (its finisher died or lost the database between
  storing its chunk and ending the job), and one asked to stop with none running is cancelled.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import exists, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app import chunk_recovery as recovery
from app import chunks as commands
from app.celery_config import TASKS
from app.models import Chunk, Job, JobStatus
from app.settings import Settings, get_settings
from app.timeutil import utcnow
from worker.chunk_runner import RUN_CHUNK, Send
from worker.chunk_stages import CHUNK_STAGES

logger = logging.getLogger(__name__)

# What launch_job writes on a job it could not send (the broker was down).
BROKER_WAIT = "waiting for the broker"


@dataclass
class Sweep:
    requeued: int = 0
    resent_chunks: int = 0
    stalled_chunks: int = 0
    resent_jobs: int = 0
    failed_jobs: int = 0
    settled_jobs: int = 0


def sweep_once(
    engine: Engine,
    send: Send,
    settings: Settings,
    now: datetime | None = None,
    stalled_sent: dict[int, datetime] | None = None,
) -> Sweep:
    """One pass. `stalled_sent`: when this sweeper last sent each stalled job's chunk again
    (kept between passes by the Sweeper), so a job waiting for a busy worker gets one more
    message a window, not one a pass."""
    now = now or utcnow()
    sweep = Sweep()
    quiet = timedelta(seconds=settings.CHUNK_LEASE_SECONDS)
    stalled_sent = {} if stalled_sent is None else stalled_sent
    # A send older than a window no longer holds a job back: forget it, so the map stays small.
    for job_id in [j for j, sent in stalled_sent.items() if now - sent >= quiet]:
        del stalled_sent[job_id]
    with Session(engine) as session:
        for chunk in recovery.requeue_expired(session, now, settings.CHUNK_MAX_ATTEMPTS):
            job = session.get(Job, chunk.job_id)
            if job is not None:
                _send_chunk(session, send, chunk, job.queue)
                sweep.requeued += 1
        for chunk, queue in recovery.unsent_chunks(session):
            _send_chunk(session, send, chunk, queue)
            sweep.resent_chunks += 1
        for chunk, queue in recovery.stalled_chunks(session, now, quiet):
            if chunk.job_id in stalled_sent:
                continue
            logger.warning(
                "job %s has not moved for %s: sending chunk %s again",
                chunk.job_id,
                quiet,
                chunk.index,
            )
            _send_chunk(session, send, chunk, queue)
            stalled_sent[chunk.job_id] = now
            sweep.stalled_chunks += 1
        lost, failed = _lost_jobs(session, now, settings)
        sweep.failed_jobs = failed
        for job in lost + _unsent_jobs(session, now, settings):
            task_name, queue_name = TASKS[job.kind]
            try:
                job.celery_task_id = send(task_name, [job.id or 0], queue_name)[:64]
            except Exception as exc:  # the broker is down: _unsent_jobs finds it next pass
                logger.warning("could not send job %s again: %s", job.id, exc)
                job.celery_task_id = None
                job.message = f"{BROKER_WAIT}: {exc}"[:500]
                session.add(job)
                session.commit()
                continue
            session.add(job)
            session.commit()
            sweep.resent_jobs += 1
        sweep.settled_jobs = _settle(session)
    return sweep


def _settle(session: Session) -> int:
    """Ends the running chunked jobs whose chunks have all ended; returns how many it ended."""
    ended = 0
    for job in recovery.settled_jobs(session):
        assert job.id is not None
        if job.cancel_requested:
            ended += commands.cancel_job_if_stopped(session, job.id)
            continue
        result, message = CHUNK_STAGES[job.kind].summary(session, job.id, job.progress_total or 0)
        ended += commands.finish_job_if_done(session, job.id, result, message)
    return ended


def _send_chunk(session: Session, send: Send, chunk: Chunk, queue: str) -> None:
    try:
        chunk.celery_task_id = send(RUN_CHUNK, [chunk.job_id, chunk.index], queue)[:64]
    except Exception as exc:  # the broker is down: unsent_chunks finds it on the next pass
        logger.warning("could not send chunk %s: %s", chunk.id, exc)
        return
    session.add(chunk)
    session.commit()


def _lost_jobs(session: Session, now: datetime, settings: Settings) -> tuple[list[Job], int]:
    """Non-chunked running jobs whose worker stopped beating: queued to be sent again, or failed
    after CHUNK_MAX_ATTEMPTS sends. Returns the ones this sweeper queued, and how many failed."""
    seconds = settings.JOB_LOST_AFTER_SECONDS
    stale = now - timedelta(seconds=seconds)
    chunked = exists().where(col(Chunk.job_id) == Job.id)
    candidates = session.exec(
        select(Job).where(
            col(Job.status) == JobStatus.RUNNING,
            col(Job.heartbeat_at) < stale,
            ~chunked,
        )
    ).all()
    lost, failed = [], 0
    reason = f"the worker stopped reporting for over {seconds} s (it died or lost its connection)"
    for job in candidates:
        retry = job.attempts < settings.CHUNK_MAX_ATTEMPTS
        values = (
            {
                "status": JobStatus.QUEUED,
                "attempts": job.attempts + 1,
                "error": reason,
                "message": f"{reason}; sent again (attempt {job.attempts + 2})",
            }
            if retry
            else {
                "status": JobStatus.FAILED,
                "finished_at": now,
                "error": f"{reason}, {job.attempts + 1} times",
                "message": f"{reason}, {job.attempts + 1} times"[:500],
            }
        )
        won = session.exec(
            update(Job)
            .where(
                col(Job.id) == job.id,
                col(Job.status) == JobStatus.RUNNING,
                col(Job.heartbeat_at) < stale,
                col(Job.attempts) == job.attempts,
            )
            .values(**values)
        )
        session.commit()
        if won.rowcount:
            session.refresh(job)
            if retry:
                lost.append(job)
            else:
                failed += 1
    return lost, failed


def _unsent_jobs(session: Session, now: datetime, settings: Settings) -> list[Job]:
    """Queued jobs that no message carries: their send failed at launch."""
    settled = now - timedelta(seconds=settings.SWEEP_SECONDS)
    return list(
        session.exec(
            select(Job).where(
                Job.status == JobStatus.QUEUED,
                col(Job.celery_task_id).is_(None),
                col(Job.message).startswith(BROKER_WAIT),
                col(Job.cancel_requested).is_(False),
                col(Job.created_at) < settled,
            )
        )
    )


class Sweeper:
    """A daemon thread that sweeps every SWEEP_SECONDS until stopped."""

    def __init__(self, engine: Engine, send: Send, settings: Settings) -> None:
        self.engine, self.send, self.settings = engine, send, settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweeper", daemon=True)
        self._stalled_sent: dict[int, datetime] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.SWEEP_SECONDS):
            try:
                sweep_once(self.engine, self.send, self.settings, stalled_sent=self._stalled_sent)
            except Exception:  # the database is away: the next pass tries again
                logger.exception("sweep failed")


_sweeper: Sweeper | None = None


@worker_ready.connect
def _start_sweeper(**_: object) -> None:
    global _sweeper
    from app.db import get_engine
    from worker.tasks import send_task

    _sweeper = Sweeper(get_engine(), send_task, get_settings())
    _sweeper.start()


@worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    if _sweeper is not None:
        _sweeper.stop()
