"""Chunk commands: every state change is conditional, so a race has exactly one winner."""

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app import chunk_recovery, chunks, chunks_view
from app.models import Chunk, ChunkStatus, Job, JobStatus
from app.settings import get_settings
from app.timeutil import utcnow
from worker.sweeper import sweep_once


def running_job_with_chunks(session: Session, items: list[int], size: int) -> Job:
    job = Job(kind="generate", queue="gpu", status=JobStatus.RUNNING, progress_total=len(items))
    session.add(job)
    session.commit()
    chunks.plan_chunks(session, job, items, size)
    session.commit()
    return job


def chunk_id(session: Session, job: Job, index: int) -> int:
    return next(c.id or 0 for c in chunks.job_chunks(session, job.id or 0) if c.index == index)


def test_planning_splits_items_and_a_replan_keeps_indexes(session: Session) -> None:
    job = running_job_with_chunks(session, list(range(1, 11)), 4)
    planned = chunks.job_chunks(session, job.id or 0)
    assert [(c.index, c.item_ids) for c in planned] == [
        (0, [1, 2, 3, 4]),
        (1, [5, 6, 7, 8]),
        (2, [9, 10]),
    ]
    planned[1].status = ChunkStatus.FAILED
    session.add(planned[1])
    session.commit()
    # A resume: the failed chunk is queued again under its index; nothing new is made.
    again = chunks.plan_chunks(session, job, [5, 6, 7, 8, 9, 10], 4)
    assert sorted(c.index for c in again) == [0, 1, 2]
    assert len(chunks.job_chunks(session, job.id or 0)) == 3


def test_two_claims_of_one_chunk_have_one_winner(session: Session) -> None:
    job = running_job_with_chunks(session, [1, 2], 2)
    target = chunk_id(session, job, 0)
    first = chunks.claim_chunk(session, target, "worker-a", 60)
    second = chunks.claim_chunk(session, target, "worker-b", 60)
    assert first is not None and first.worker == "worker-a" and first.attempts == 1
    assert second is None  # a redelivered message for a running chunk does nothing


def test_a_chunk_of_a_cancelled_job_is_not_claimed(session: Session) -> None:
    job = running_job_with_chunks(session, [1, 2], 2)
    job.cancel_requested = True
    session.add(job)
    session.commit()
    assert chunks.claim_chunk(session, chunk_id(session, job, 0), "w", 60) is None


def test_sweep_requeues_an_expired_lease_then_fails_the_job(session: Session) -> None:
    job = running_job_with_chunks(session, [1, 2, 3], 2)
    target = chunk_id(session, job, 0)
    max_attempts = 2
    for attempt in range(1, max_attempts + 1):
        claimed = chunks.claim_chunk(session, target, f"w{attempt}", 1)
        assert claimed is not None and claimed.attempts == attempt
        later = utcnow() + timedelta(seconds=5)
        requeued = chunk_recovery.requeue_expired(session, later, max_attempts)
        if attempt < max_attempts:
            assert [c.id for c in requeued] == [target]
            chunk = session.get(Chunk, target)
            assert chunk is not None and chunk.status == ChunkStatus.QUEUED
            # The job's message counts it as waiting again, not as running.
            session.refresh(job)
            assert job.message == "0 of 2 chunks done", job.message
    session.expire_all()
    chunk, job_row = session.get(Chunk, target), session.get(Job, job.id)
    assert chunk is not None and chunk.status == ChunkStatus.FAILED
    assert job_row is not None and job_row.status == JobStatus.FAILED
    assert "after 2 attempts" in (job_row.error or "") and "w2" in (job_row.error or "")
    # The job's other chunk will not run.
    statuses = {c.index: c.status for c in chunks.job_chunks(session, job.id or 0)}
    assert statuses[1] == ChunkStatus.CANCELLED


def test_a_live_lease_is_left_alone(session: Session) -> None:
    job = running_job_with_chunks(session, [1], 1)
    claimed = chunks.claim_chunk(session, chunk_id(session, job, 0), "w", 60)
    assert claimed is not None
    assert chunk_recovery.requeue_expired(session, utcnow(), 3) == []
    assert chunks.extend_lease(session, claimed, 60, steps_done=1)


def test_the_last_chunk_has_exactly_one_finisher(session: Session) -> None:
    job = running_job_with_chunks(session, [1, 2, 3], 2)
    claimed = [chunks.claim_chunk(session, chunk_id(session, job, i), "w", 60) for i in (0, 1)]
    first, last = claimed
    assert first is not None and last is not None
    assert chunks.finish_chunk(session, first, seconds=1.0)
    session.commit()
    assert not chunks.finish_job_if_done(session, job.id or 0)  # a chunk still runs
    assert chunks.finish_chunk(session, last, seconds=1.0)
    assert not chunks.finish_chunk(session, last, seconds=1.0)  # a second finish of it: no
    session.commit()
    assert chunks.finish_job_if_done(session, job.id or 0, {"traces": 3}, "3 of 3 prompts")
    assert not chunks.finish_job_if_done(session, job.id or 0)
    session.expire_all()
    row = session.get(Job, job.id)
    assert row is not None and row.status == JobStatus.SUCCEEDED and row.progress_done == 3
    assert row.result == {"traces": 3} and row.message == "3 of 3 prompts"


def test_progress_sums_done_chunks_and_steps_inside_running_ones(session: Session) -> None:
    job = running_job_with_chunks(session, list(range(1, 9)), 4)
    done = chunks.claim_chunk(session, chunk_id(session, job, 0), "w", 60)
    running = chunks.claim_chunk(session, chunk_id(session, job, 1), "w", 60)
    assert done is not None and running is not None
    chunks.finish_chunk(session, done, seconds=1.0)
    session.commit()
    chunks.extend_lease(session, running, 60, steps_done=1, steps_total=2)
    progress = chunks_view.job_chunk_progress(session, job.id or 0)
    assert (progress.items_done, progress.items_running, progress.items_total) == (4, 2.0, 8)
    assert progress.done == 6 and progress.counts[ChunkStatus.RUNNING] == 1


def test_the_sweeper_sends_a_requeued_chunk_again(engine: Engine, session: Session) -> None:
    job = running_job_with_chunks(session, [1, 2], 2)
    claimed = chunks.claim_chunk(session, chunk_id(session, job, 0), "dead", 1)
    assert claimed is not None
    sent: list[tuple[str, list[int], str]] = []

    def send(task: str, args: list[int], queue: str) -> str:
        sent.append((task, args, queue))
        return "message-1"

    sweep = sweep_once(engine, send, get_settings(), now=utcnow() + timedelta(seconds=5))
    assert sweep.requeued == 1
    assert sent == [("worker.tasks.run_chunk", [job.id, 0], "gpu")]
    # The re-sent message carries it now: the next pass sends nothing.
    sent.clear()
    sweep_once(engine, send, get_settings(), now=utcnow() + timedelta(seconds=5))
    assert sent == []


def test_the_sweeper_ends_a_job_whose_finisher_died_after_storing_its_chunk(
    engine: Engine, session: Session
) -> None:
    job = running_job_with_chunks(session, [1, 2, 3, 4], 2)
    settings = get_settings()

    def send(task: str, args: list[int], queue: str) -> str:
        raise AssertionError("nothing is sent for a settled job")

    for index in (0, 1):
        claimed = chunks.claim_chunk(session, chunk_id(session, job, index), "w", 60)
        assert claimed is not None
        if index == 0:
            chunks.finish_chunk(session, claimed, seconds=1.0)
            session.commit()
    # One chunk still runs: the job is not settled.
    assert sweep_once(engine, send, settings).settled_jobs == 0
    last = session.get(Chunk, chunk_id(session, job, 1))
    assert last is not None
    # Its worker stored the chunk, then lost the database before it could end the job.
    chunks.finish_chunk(session, last, seconds=1.0)
    session.commit()
    session.refresh(job)
    assert job.status == JobStatus.RUNNING
    assert sweep_once(engine, send, settings).settled_jobs == 1
    session.refresh(job)
    assert job.status == JobStatus.SUCCEEDED and job.finished_at is not None


def test_the_sweeper_cancels_a_stopping_job_once_no_chunk_runs(
    engine: Engine, session: Session
) -> None:
    job = running_job_with_chunks(session, [1, 2, 3, 4], 2)
    claimed = chunks.claim_chunk(session, chunk_id(session, job, 0), "w", 60)
    assert claimed is not None
    job.cancel_requested = True
    session.add(job)
    session.commit()

    def send(task: str, args: list[int], queue: str) -> str:
        raise AssertionError("nothing is sent for a stopping job")

    assert sweep_once(engine, send, get_settings()).settled_jobs == 0
    chunks.stop_chunk(session, claimed)
    assert sweep_once(engine, send, get_settings()).settled_jobs == 1
    session.refresh(job)
    assert job.status == JobStatus.CANCELLED
