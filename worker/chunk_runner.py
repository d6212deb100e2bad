"""One runner for every chunked stage: the planner that splits a run, and the chunk task.

The planner (the stage's own task, worker.tasks.run_generation and the like) stores the chunk rows
and sends one `worker.tasks.run_chunk` per chunk on the job's queue; any worker takes any chunk.
A chunk is claimed by a conditional UPDATE with a lease that a heartbeat thread extends while it
runs, and its results are stored in the transaction that marks it done, so a message delivered
twice, or a chunk re-run after its worker died, stores nothing twice.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from app import chunks as commands
from app.models import Chunk, ChunkStatus, Job, JobStatus, LanguageModel
from app.settings import get_settings
from app.timeutil import utcnow
from worker.backends.base import Backend
from worker.chunk_stages import CHUNK_STAGES, ChunkStage
from worker.lifecycle import JobCancelled, JobSkipped, claim_job
from worker.progress import MeteredBackend, StepProgress

logger = logging.getLogger(__name__)

RUN_CHUNK = "worker.tasks.run_chunk"

# Told each step as it starts (the CLI's progress bar).
OnStep = Callable[[StepProgress], None]

# Sends a task by name with its arguments to a queue, returns the message's id.
Send = Callable[[str, list[int], str], str]

# Errors that say nothing about the chunk itself: the database or a model server was briefly
# away. The chunk is queued again (its attempts count); anything else fails the run at once.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    ConnectionError,
    TimeoutError,
)


class ChunkLost(Exception):
    """The chunk's lease ran out and the sweeper gave it to another worker: stop, store nothing."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def plan_run(engine: Engine, job_id: int, *, task_id: str | None, send: Send) -> int:
    """Splits the job's unstored items into chunks and sends a task for each; returns how many."""
    settings = get_settings()
    with Session(engine) as session:
        planned = session.get(Job, job_id)
        if (
            planned is not None
            and planned.status == JobStatus.RUNNING
            and commands.has_chunks(session, job_id)
        ):
            # A planner message delivered again: the chunks carry the run (a chunked job's row
            # has no heartbeat, so the stale-heartbeat rule of claim_job does not apply).
            raise JobSkipped(f"job {job_id} is planned and running")
        if not claim_job(
            session, job_id, task_id=task_id, lost_after_seconds=settings.JOB_LOST_AFTER_SECONDS
        ):
            raise JobSkipped(f"job {job_id} is not waiting to be planned")
        job = session.get(Job, job_id)
        assert job is not None
        try:
            stage = CHUNK_STAGES[job.kind]
            spec = stage.spec_type.from_parameters(job.parameters)
            items = stage.items(session, spec)
            stored = stage.stored(session, job_id)
            queued = commands.plan_chunks(
                session, job, [i for i in items if i not in stored], stage.chunk_size(spec)
            )
        except Exception as exc:
            session.rollback()
            _fail_job(session, job_id, str(exc) or type(exc).__name__)
            raise
        waiting = sum(len(chunk.item_ids) for chunk in queued)
        job.progress_total = len(items)
        job.progress_done = len(items) - waiting
        resumed = f"resuming after {len(stored)} stored {stage.unit}; " if stored else ""
        job.message = f"{resumed}{len(queued)} chunks queued"
        session.add(job)
        session.commit()
        if not queued:
            result, message = stage.summary(session, job_id, len(items))
            commands.finish_job_if_done(session, job_id, result, message)
            return 0
        targets = [(chunk.id, chunk.index) for chunk in queued]
        queue = job.queue
    for chunk_id, index in targets:
        _send_chunk(engine, send, chunk_id, job_id, index, queue)
    return len(targets)


def _send_chunk(
    engine: Engine, send: Send, chunk_id: int | None, job_id: int, index: int, queue: str
) -> None:
    message_id = send(RUN_CHUNK, [job_id, index], queue)
    with Session(engine) as session:
        chunk = session.get(Chunk, chunk_id)
        if chunk is not None and chunk.celery_task_id is None:
            chunk.celery_task_id = message_id[:64]
            session.add(chunk)
            session.commit()


def _fail_job(session: Session, job_id: int, error: str) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        job.status, job.error, job.message = JobStatus.FAILED, error, error[:500]
        job.finished_at = utcnow()
        session.add(job)
        session.commit()


_backends: dict[Any, Backend] = {}


def _backend_key(model: LanguageModel) -> tuple[int | None, str]:
    return (model.id, repr(model.model_dump()))


def is_cached(model: LanguageModel) -> bool:
    return _backend_key(model) in _backends


def cached_backend(model: LanguageModel) -> Backend:
    """One loaded model per worker process, kept between chunks (a GPU worker holds one)."""
    from worker.backends.loading import load_backend

    key = _backend_key(model)
    if key not in _backends:
        for stale in list(_backends):
            _backends.pop(stale).close()
        _backends[key] = load_backend(model)
    return _backends[key]


class _Lease:
    """Extends the chunk's lease every `every` seconds while the chunk runs; records steps."""

    def __init__(self, engine: Engine, chunk: Chunk, lease_seconds: float, every: float) -> None:
        self.engine, self.chunk, self.lease_seconds = engine, chunk, lease_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(every,), daemon=True)

    def __enter__(self) -> "_Lease":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def renew(self, **values: Any) -> None:
        with Session(self.engine) as session:
            if not commands.extend_lease(session, self.chunk, self.lease_seconds, **values):
                self.lost = True

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.renew()
            except Exception:  # a missed beat is harmless; the next one may succeed
                logger.warning("could not renew the lease of chunk %s", self.chunk.id)


def run_chunk(
    engine: Engine,
    job_id: int,
    index: int,
    *,
    send: Send,
    backend: Backend | None = None,
    worker: str | None = None,
    on_step: OnStep | None = None,
) -> None:
    """Claims chunk `index` of the job, runs it and stores its results; a chunk that is not
    queued (running elsewhere, done, cancelled) is left alone."""
    settings = get_settings()
    with Session(engine) as session:
        row = session.exec(
            select(Chunk).where(Chunk.job_id == job_id, Chunk.index == index)
        ).first()
        if row is None or row.id is None:
            logger.info("job %s has no chunk %s", job_id, index)
            return
        chunk = commands.claim_chunk(
            session, row.id, worker or worker_name(), settings.CHUNK_LEASE_SECONDS
        )
        if chunk is None:
            job = session.get(Job, job_id)
            if job is not None and job.cancel_requested:
                commands.cancel_queued_chunks(session, job_id)
                session.commit()
                commands.cancel_job_if_stopped(session, job_id)
            logger.info("chunk %s of job %s is not queued: nothing to do", index, job_id)
            return
        job = session.get(Job, job_id)
        assert job is not None
        stage = CHUNK_STAGES[job.kind]
        parameters, queue, total = dict(job.parameters), job.queue, job.progress_total or 0
    with _Lease(
        engine, chunk, settings.CHUNK_LEASE_SECONDS, settings.JOB_HEARTBEAT_SECONDS
    ) as lease:
        try:
            _run_claimed(engine, stage, chunk, parameters, total, lease, backend, on_step)
        except JobCancelled:
            with Session(engine) as session:
                commands.stop_chunk(session, chunk)
                commands.cancel_queued_chunks(session, job_id)
                session.commit()
                commands.cancel_job_if_stopped(session, job_id)
        except ChunkLost:
            logger.warning("chunk %s of job %s was given to another worker", index, job_id)
        except TRANSIENT_ERRORS as exc:
            error = str(exc) or type(exc).__name__
            with Session(engine) as session:
                if chunk.attempts >= settings.CHUNK_MAX_ATTEMPTS:
                    commands.fail_chunk(session, chunk, error)
                    raise
                commands.requeue_chunk(session, chunk, error)
            time.sleep(min(30.0, 2.0**chunk.attempts))  # back off before the next claim
            _send_chunk(engine, send, chunk.id, job_id, index, queue)
        except Exception as exc:
            with Session(engine) as session:
                commands.fail_chunk(session, chunk, str(exc) or type(exc).__name__)
            raise


def _run_claimed(
    engine: Engine,
    stage: ChunkStage,
    chunk: Chunk,
    parameters: dict[str, Any],
    total: int,
    lease: _Lease,
    backend: Backend | None,
    on_step: OnStep | None = None,
) -> None:
    started = time.monotonic()
    settings = get_settings()
    spec = stage.spec_type.from_parameters(parameters)
    steps_total = stage.steps(spec)
    size = f"{len(chunk.item_ids)} {stage.unit}"
    with Session(engine) as session:
        inputs = stage.prepare(session, spec, chunk.item_ids)
        model = session.get(LanguageModel, stage.model_id(spec))
        if model is None:
            raise LookupError(f"model {stage.model_id(spec)} does not exist")
        session.expunge(model)
    if backend is None and not is_cached(model):
        # Loading takes minutes for a large model on a GPU worker: say so meanwhile.
        lease.renew(steps_total=steps_total, message=f"loading {model.name} · {size}")
    metered = MeteredBackend(backend or cached_backend(model))
    with Session(engine) as session:
        chunks, past_pace = commands.done_pace(session, chunk.job_id)
    steps = 0
    first_step: float | None = None
    # The claim wrote the chunk's row a moment ago: it counts as the last write.
    last_write = started
    # Chunks of the job running now, for the time left: read when a step writes, kept between.
    running = 1

    def step(message: str) -> None:
        nonlocal steps, first_step, last_write, running
        now = time.monotonic()
        first_step = now if first_step is None else first_step
        write = now - last_write >= settings.CHUNK_STEP_WRITE_SECONDS
        # One transaction per step (the lease, the cancel check and the job's message): with K
        # workers on SQLite every commit waits its turn at the one writer lock. The lease's
        # UPDATE comes first, so the transaction holds that lock from its start and its reads
        # see the latest rows. A step that does not write only reads (the cancel check).
        with Session(engine) as session:
            if write and not commands.renew_lease(
                session,
                chunk,
                lease.lease_seconds,
                steps_done=steps,
                steps_total=steps_total,
                message=f"{message} · {size}"[:500],
            ):
                lease.lost = True
            if lease.lost:
                raise ChunkLost()
            job = session.get(Job, chunk.job_id)
            if job is None or job.cancel_requested or job.status != JobStatus.RUNNING:
                session.commit()
                raise JobCancelled()
            if write:
                running = commands.running_chunks(session, chunk.job_id)
            progress = StepProgress(
                chunk_number=chunk.index + 1,
                chunks=chunks,
                step=message,
                items=len(chunk.item_ids),
                unit=stage.unit,
                steps_done=steps,
                steps_total=steps_total,
                tokens=metered.tokens,
                seconds=now - first_step,
                job_remaining=(job.progress_total or 0) - job.progress_done,
                past_seconds_per_item=past_pace,
                running=running,
            )
            if write:
                # Several chunks may run at once: the last step written is the job's message.
                session.exec(
                    update(Job)
                    .where(col(Job.id) == chunk.job_id, col(Job.status) == JobStatus.RUNNING)
                    .values(message=progress.message[:500])
                )
                session.commit()
                last_write = now
        if on_step is not None:
            on_step(progress)
        steps += 1

    results = stage.run(inputs, chunk.index, metered, step)
    if lease.lost:
        raise ChunkLost()
    for last_try in (False, True):
        with Session(engine) as session:
            try:
                stage.store(session, chunk.job_id, inputs, results)
                commands.finish_chunk(
                    session, chunk, seconds=time.monotonic() - started, message=f"done · {size}"
                )
                session.commit()
            except IntegrityError:
                # Another try stored some of these items meanwhile: theirs stand, store the rest.
                session.rollback()
                if last_try:
                    raise
                continue
            # The summary reads every stored item of the run: only the last chunk needs it.
            if commands.all_chunks_done(session, chunk.job_id):
                result, message = stage.summary(session, chunk.job_id, total)
                commands.finish_job_if_done(session, chunk.job_id, result, message)
            return


def run_in_process(
    engine: Engine, job_id: int, *, backend: Backend | None = None, on_step: OnStep | None = None
) -> None:
    """Plans the job and runs every chunk here, one after another (the CLI and in-process tests);
    the first chunk that fails stops it, as it fails the job."""
    sent: list[list[int]] = []

    def send(task: str, args: list[int], queue: str) -> str:
        sent.append(args)
        return f"in-process-{args[0]}-{args[-1]}"

    plan_run(engine, job_id, task_id=None, send=send)
    while sent:
        job, index = sent.pop(0)
        run_chunk(
            engine, job, index, send=send, backend=backend, worker="in-process", on_step=on_step
        )


def chunk_statuses(engine: Engine, job_id: int) -> list[ChunkStatus]:
    with Session(engine) as session:
        return [chunk.status for chunk in commands.job_chunks(session, job_id)]
