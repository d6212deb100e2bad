"""Chunk claims on PostgreSQL: two workers racing for one chunk have one winner, and a message
delivered again for a chunk that is running or done does nothing."""

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from app import chunks
from app.constitutions import create_constitution
from app.db import engine_for
from app.models import Chunk, ChunkStatus, Job, JobStatus, LanguageModel, Trace
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.recipe.documents import ConstitutionDoc, PrincipleDoc
from app.settings import get_settings
from app.timeutil import utcnow
from worker.backends.fake import FakeBackend
from worker.lifecycle import JobSkipped

pytestmark = pytest.mark.services

RACES = 5


@pytest.fixture
def pg_engine(
    postgres_url: str, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The settings (so the task's own engine) point at a fresh PostgreSQL database."""
    import app.models  # noqa: F401

    monkeypatch.setenv("DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    engine = engine_for(postgres_url)
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def running_job(session: Session, items: list[int], size: int) -> Job:
    job = Job(kind="generate", queue="gpu", status=JobStatus.RUNNING, progress_total=len(items))
    session.add(job)
    session.commit()
    chunks.plan_chunks(session, job, items, size)
    session.commit()
    return job


def race(engine: Engine, chunk_id: int) -> list[str]:
    """Two workers claim the chunk at the same moment (they meet at a barrier); the winners."""
    barrier = threading.Barrier(2, timeout=30)
    winners: list[str] = []

    def claim(worker: str) -> None:
        with Session(engine) as session:
            barrier.wait()
            if chunks.claim_chunk(session, chunk_id, worker, 60) is not None:
                winners.append(worker)

    threads = [threading.Thread(target=claim, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return winners


def test_two_workers_claiming_one_chunk_at_once_have_one_winner(pg_engine: Engine) -> None:
    with Session(pg_engine) as session:
        job = running_job(session, list(range(1, 2 * RACES + 1)), 2)
        ids = [chunk.id or 0 for chunk in chunks.job_chunks(session, job.id or 0)]
    for chunk_id in ids:
        winners = race(pg_engine, chunk_id)
        assert len(winners) == 1, winners
        with Session(pg_engine) as session:
            chunk = session.get(Chunk, chunk_id)
            assert chunk is not None
            assert (chunk.status, chunk.attempts, chunk.worker) == (
                ChunkStatus.RUNNING,
                1,
                winners[0],
            )


def generation_job(session: Session, prompts: int, chunk_size: int) -> Job:
    principle = PrincipleDoc(
        key="harm", critique_request="How was it harmful?", revision_request="Make it harmless."
    )
    _, version = create_constitution(
        session=session,
        doc=ConstitutionDoc(name="claims", principles=[principle]),
        user=None,
        publish=True,
    )
    prompt_set = store_prompt_set(
        session=session,
        name="claims prompts",
        prompts=[
            ParsedPrompt(text=f"question {i}?", context=None, line=i, metadata={})
            for i in range(prompts)
        ],
    )
    model = LanguageModel(name="fake", backend="transformers", path="fake")
    session.add(model)
    session.flush()
    job = Job(
        kind="generate",
        queue="gpu",
        parameters={
            "constitution_version_id": version.id,
            "prompt_set_id": prompt_set.id,
            "model_id": model.id,
            "rounds": 1,
            "seed": 1,
            "max_new_tokens": 16,
            "temperature": 1.0,
            "top_p": 1.0,
            "chunk_size": chunk_size,
        },
    )
    session.add(job)
    session.commit()
    return job


def test_a_redelivered_chunk_message_for_a_done_or_running_chunk_does_nothing(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.chunk_runner
    from worker.tasks import run_chunk

    monkeypatch.setattr(worker.chunk_runner, "cached_backend", lambda model: FakeBackend())
    sent: list[list[int]] = []

    def send(task: str, args: list[int], queue: str) -> str:
        sent.append(args)
        return f"message-{len(sent)}"

    with Session(pg_engine) as session:
        job = generation_job(session, prompts=4, chunk_size=2)
        job_id = job.id or 0
    assert worker.chunk_runner.plan_run(pg_engine, job_id, task_id="plan", send=send) == 2
    assert sent == [[job_id, 0], [job_id, 1]]
    # The planner's own message delivered again, long after (a chunked job's row does not beat).
    with Session(pg_engine) as session:
        planned = session.get(Job, job_id)
        assert planned is not None
        planned.heartbeat_at = utcnow() - timedelta(hours=1)
        session.add(planned)
        session.commit()
    with pytest.raises(JobSkipped):
        worker.chunk_runner.plan_run(pg_engine, job_id, task_id="again", send=send)
    assert len(sent) == 2

    def state() -> list[tuple[int, ChunkStatus, int, str]]:
        with Session(pg_engine) as session:
            rows = chunks.job_chunks(session, job_id)
            traces = session.exec(
                select(func.count()).select_from(Trace).where(col(Trace.job_id) == job_id)
            ).one()
            return [(int(traces), c.status, c.attempts, c.worker) for c in rows]

    run_chunk(job_id, 0)  # the task function itself, as a worker runs it
    done = state()
    assert [(status, attempts) for _, status, attempts, _ in done] == [
        (ChunkStatus.DONE, 1),
        (ChunkStatus.QUEUED, 0),
    ]
    assert done[0][0] == 2
    run_chunk(job_id, 0)  # delivered again: the chunk is done
    assert state() == done

    # Another worker holds chunk 1 (its lease is live): a second delivery leaves it alone.
    with Session(pg_engine) as session:
        target = chunks.job_chunks(session, job_id)[1].id or 0
        assert chunks.claim_chunk(session, target, "the-other-worker", 60) is not None
    held = state()
    run_chunk(job_id, 1)
    assert state() == held
    assert held[1][1:] == (ChunkStatus.RUNNING, 1, "the-other-worker")
    with Session(pg_engine) as session:
        still = session.get(Job, job_id)
        assert still is not None and still.status == JobStatus.RUNNING
        # The job's message counts its chunks, from the rows.
        assert still.message == "1 of 2 chunks done · 1 running"
