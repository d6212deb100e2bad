"""Every engine step reaches the job's message, with a rate and the time left; a cancel takes
effect at the next step of a running chunk."""

import re
from collections.abc import Sequence

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from app.constitutions import create_constitution, default_document
from app.job_records import create_job
from app.models import Chunk, ChunkStatus, Job, JobStatus, LanguageModel, Trace
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.settings import get_settings
from worker.backends.base import Conversation, Generation, GenerationParams
from worker.backends.fake import FakeBackend
from worker.chunk_runner import run_in_process
from worker.progress import StepProgress


def generation_job(session: Session, *, prompts: int, chunk_size: int, rounds: int = 1) -> int:
    _, version = create_constitution(
        session=session, doc=default_document(), user=None, publish=True
    )
    prompt_set = store_prompt_set(
        session=session,
        name="steps",
        prompts=[
            ParsedPrompt(text=f"question {i}?", context=None, line=i, metadata={})
            for i in range(prompts)
        ],
    )
    model = LanguageModel(name="fake", backend="transformers", path="fake")
    session.add(model)
    session.commit()
    job = create_job(
        session=session,
        kind="generate",
        parameters={
            "constitution_version_id": version.id,
            "prompt_set_id": prompt_set.id,
            "model_id": model.id,
            "rounds": rounds,
            "max_new_tokens": 8,
            "chunk_size": chunk_size,
        },
        user=None,
    )
    return job.id or 0


class Watching(FakeBackend):
    """Reads the job's message as each call starts (the step reported it just before)."""

    def __init__(self, engine: Engine, job_id: int, cancel_at_call: int | None = None) -> None:
        super().__init__()
        self.engine, self.job_id, self.cancel_at_call = engine, job_id, cancel_at_call
        self.messages: list[str] = []

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        with Session(self.engine) as session:
            job = session.get(Job, self.job_id)
            assert job is not None
            self.messages.append(job.message)
            if len(self.messages) == self.cancel_at_call:
                job.cancel_requested = True  # what the Cancel button does to a running job
                session.add(job)
                session.commit()
        return super().generate(conversations, params)


def test_each_step_shows_chunk_step_size_rate_and_time_left(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUNK_STEP_WRITE_SECONDS", "0")  # these steps take microseconds
    get_settings.cache_clear()
    job_id = generation_job(session, prompts=6, chunk_size=3, rounds=1)
    backend = Watching(engine, job_id)
    steps: list[StepProgress] = []
    run_in_process(engine, job_id, backend=backend, on_step=steps.append)
    assert [m.split(" · ")[:3] for m in backend.messages] == [
        ["chunk 1 of 2", "initial replies", "3 prompts"],
        ["chunk 1 of 2", "round 1 critiques", "3 prompts"],
        ["chunk 1 of 2", "round 1 revisions", "3 prompts"],
        ["chunk 2 of 2", "initial replies", "3 prompts"],
        ["chunk 2 of 2", "round 1 critiques", "3 prompts"],
        ["chunk 2 of 2", "round 1 revisions", "3 prompts"],
    ]
    # The first step of the first chunk has nothing to measure; later ones have both.
    assert "tok/s" not in backend.messages[0] and "left" not in backend.messages[0]
    pattern = r" · [\d.]+ tok/s · about \d+ (s|min) left$"
    assert all(re.search(pattern, m) for m in backend.messages[1:3] + backend.messages[4:])
    # The second chunk's first step knows the first chunk's pace.
    assert "left" in backend.messages[3]
    assert [s.job_remaining for s in steps] == [6, 6, 6, 3, 3, 3]
    assert [s.steps_done for s in steps] == [0, 1, 2] * 2
    # Tokens counted are those the backend returned within the chunk.
    assert steps[1].tokens > 0 and steps[3].tokens == 0
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.SUCCEEDED


def test_steps_closer_than_the_write_interval_are_not_written(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUNK_STEP_WRITE_SECONDS", "3600")
    get_settings.cache_clear()
    job_id = generation_job(session, prompts=6, chunk_size=3, rounds=1)
    backend = Watching(engine, job_id)
    steps: list[StepProgress] = []
    run_in_process(engine, job_id, backend=backend, on_step=steps.append)
    # No step came a second after its chunk's claim: the page shows the claim's chunk count,
    # while the progress bar (on_step) still hears every step.
    assert (
        backend.messages
        == ["0 of 2 chunks done · 1 running"] * 3 + ["1 of 2 chunks done · 1 running"] * 3
    )
    assert [s.step for s in steps] == [
        "initial replies",
        "round 1 critiques",
        "round 1 revisions",
    ] * 2
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.SUCCEEDED


def test_a_cancel_mid_chunk_stops_at_the_next_step(engine: Engine, session: Session) -> None:
    job_id = generation_job(session, prompts=6, chunk_size=3, rounds=2)
    # Cancelled while the first chunk's initial replies are being written; the next step is
    # not written (the default interval), and still checks for the cancel.
    backend = Watching(engine, job_id, cancel_at_call=1)
    run_in_process(engine, job_id, backend=backend)
    assert len(backend.calls) == 1  # the critiques of round 1 never started
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.CANCELLED
    statuses = session.exec(select(Chunk.status).where(Chunk.job_id == job_id)).all()
    assert sorted(statuses) == [ChunkStatus.CANCELLED, ChunkStatus.CANCELLED]
    assert session.exec(select(func.count()).select_from(Trace)).one() == 0
