from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from app.constitutions import create_constitution, default_document
from app.models import AuditEvent, Job, JobStatus, LanguageModel, Role, Trace, TraceStep, User
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from tests.conftest import RecordingQueue, post
from worker.backends.base import Conversation, Generation, GenerationParams
from worker.backends.fake import FakeBackend
from worker.chunk_runner import run_in_process


@pytest.fixture
def setup(session: Session, users: dict[Role, User], tmp_path: Path) -> dict[str, int]:
    _, version = create_constitution(
        session=session, doc=default_document(), user=None, publish=True
    )
    _, draft = create_constitution(
        session=session,
        doc=default_document().__class__(name="draft only", principles=[]),
        user=None,
    )
    prompt_set = store_prompt_set(
        session=session,
        name="ten",
        prompts=[
            ParsedPrompt(text=f"question {i}?", context=None, line=i, metadata={})
            for i in range(10)
        ],
    )
    model = LanguageModel(name="tiny", backend="transformers", path=str(tmp_path))
    session.add(model)
    session.commit()
    return {
        "version": version.id or 0,
        "draft": draft.id or 0,
        "set": prompt_set.id or 0,
        "model": model.id or 0,
    }


def launch_form(setup: dict[str, int], **overrides: str) -> dict[str, str]:
    return {
        "constitution_version_id": str(setup["version"]),
        "prompt_set_id": str(setup["set"]),
        "model_id": str(setup["model"]),
        "rounds": "2",
        "seed": "5",
        "max_new_tokens": "16",
        "temperature": "0.7",
        "top_p": "0.9",
        "chunk_size": "4",
        "reviews_needed": "2",
        "max_prompts": "0",
        "sample_size": "0",
        "stop": "###\n",
        **overrides,
    }


def test_models_are_registered_with_validation_and_an_audit_event(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    bad = post(
        client,
        "/models",
        data={"name": "", "backend": "openai", "path": "m", "base_url": "ftp://x"},
    )
    assert (
        bad.status_code == 400
        and "Give the model a name" in bad.text
        and "http:// or https://" in bad.text
    )
    missing = post(
        client,
        "/models",
        data={"name": "local", "backend": "transformers", "path": "/no/such/folder"},
    )
    assert missing.status_code == 400 and "/no/such/folder does not exist" in missing.text
    # A server off the operator's allow-list is an admin's to register.
    ok = post(
        make_client(Role.ADMIN),
        "/models",
        data={
            "name": "vllm",
            "backend": "openai",
            "path": "my-model",
            "base_url": "http://127.0.0.1:8001/v1/",
            "api_key_env": "CAI_API_KEY_VLLM",
        },
    )
    assert ok.status_code == 303
    model = session.exec(select(LanguageModel).where(LanguageModel.name == "vllm")).one()
    assert model.base_url == "http://127.0.0.1:8001/v1" and model.api_key_env == "CAI_API_KEY_VLLM"
    assert (
        session.exec(select(AuditEvent).where(AuditEvent.action == "model.register"))
        .one()
        .details["name"]
        == "vllm"
    )
    assert "my-model" in make_client(Role.VIEWER).get("/models").text


def test_a_launch_is_validated_and_queued_on_the_gpu_queue(
    make_client: Callable[..., TestClient],
    setup: dict[str, int],
    queue: RecordingQueue,
    session: Session,
) -> None:
    client = make_client(Role.AUTHOR)
    bad = post(
        client,
        "/generate",
        data=launch_form(
            setup, constitution_version_id=str(setup["draft"]), rounds="9", temperature="hot"
        ),
    )
    assert bad.status_code == 400
    assert (
        "published constitution version" in bad.text
        and "From 1 to 8" in bad.text
        and "A number from 0 to 5" in bad.text
    )
    assert queue.sent == []
    ok = post(client, "/generate", data=launch_form(setup))
    assert ok.status_code == 303
    task, job_id, queue_name = queue.sent[-1]
    assert (task, queue_name) == ("worker.tasks.run_generation", "gpu")
    job = session.get(Job, job_id)
    assert job is not None and job.parameters["rounds"] == 2 and job.parameters["stop"] == ["###"]
    assert job.parameters["temperature"] == 0.7 and job.parameters["model_id"] == setup["model"]
    assert job.reviews_needed == 2


def run_job(engine: Engine, job_id: int, backend: Any) -> None:
    run_in_process(engine, job_id, backend=backend)


class FailingAfter(FakeBackend):
    """Fails on its n-th call, as a server that goes away part-way would."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("the server went away")
        return super().generate(conversations, params)


def test_a_run_stores_traces_by_chunk_and_resumes_without_duplicates(
    make_client: Callable[..., TestClient],
    setup: dict[str, int],
    queue: RecordingQueue,
    session: Session,
    engine: Engine,
) -> None:
    client = make_client(Role.AUTHOR)
    post(client, "/generate", data=launch_form(setup))
    job_id = queue.sent[-1][1]
    # 5 calls per chunk of 4 (initial + 2 rounds x 2): fails in the second chunk.
    with pytest.raises(RuntimeError):
        run_job(engine, job_id, FailingAfter(calls=7))
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.FAILED and "went away" in (job.error or "")
    assert session.exec(select(func.count()).select_from(Trace)).one() == 4
    page = client.get(f"/jobs/{job_id}")
    assert "4 stored" in page.text and "Resume" in page.text

    assert post(client, f"/jobs/{job_id}/resume").status_code == 303
    assert queue.sent[-1] == ("worker.tasks.run_generation", job_id, "gpu")
    session.refresh(job)
    assert job.status == JobStatus.QUEUED
    backend = FakeBackend()
    run_job(engine, job_id, backend)
    session.refresh(job)
    assert job.status == JobStatus.SUCCEEDED and job.progress_done == job.progress_total == 10
    assert sum(len(call) for call in backend.calls) == 6 * 5  # only the 6 prompts not stored
    prompt_ids = session.exec(select(Trace.prompt_id).where(Trace.job_id == job_id)).all()
    assert len(prompt_ids) == len(set(prompt_ids)) == 10
    steps = session.exec(select(TraceStep)).all()
    assert len(steps) == 20 and all(s.principle_id for s in steps)
    assert {s.round for s in steps} == {1, 2}
    assert post(client, f"/jobs/{job_id}/resume").status_code == 409  # nothing left to resume


def test_a_prompt_set_used_by_a_run_cannot_be_deleted(
    make_client: Callable[..., TestClient],
    setup: dict[str, int],
    queue: RecordingQueue,
    engine: Engine,
) -> None:
    client = make_client(Role.AUTHOR)
    post(client, "/generate", data=launch_form(setup, max_prompts="2"))
    run_job(engine, queue.sent[-1][1], FakeBackend())
    refused = post(client, f"/prompt-sets/{setup['set']}/delete")
    assert refused.status_code == 409 and "2 traces" in refused.text


def test_a_model_that_will_not_load_fails_the_job_at_once_with_the_reason(
    make_client: Callable[..., TestClient],
    setup: dict[str, int],
    queue: RecordingQueue,
    session: Session,
    engine: Engine,
    tmp_path: Path,
) -> None:
    model = session.get(LanguageModel, setup["model"])
    assert model is not None
    model.path = str(tmp_path / "gone" / "model.gguf")
    session.add(model)
    session.commit()
    post(make_client(Role.AUTHOR), "/generate", data=launch_form(setup))
    job_id = queue.sent[-1][1]
    with pytest.raises(Exception, match="does not exist"):
        run_job(engine, job_id, None)
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.FAILED
    assert "gone/model.gguf" in (job.error or "") and "does not exist" in (job.error or "")
    assert session.exec(select(func.count()).select_from(Trace)).one() == 0
