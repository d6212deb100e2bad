"""The Job row tells the truth while a task runs: start, progress, heartbeat, cancel, failure."""

import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Job, JobStatus
from worker.lifecycle import JobSkipped, running_job


def new_job(engine: Engine, **fields: object) -> int:
    with Session(engine) as session:
        job = Job(kind="import_prompts", queue="cpu", parameters={"x": 1}, **fields)
        session.add(job)
        session.commit()
        assert job.id is not None
        return job.id


def read(engine: Engine, job_id: int) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_success_records_progress_result_and_timings(engine: Engine) -> None:
    job_id = new_job(engine)
    with running_job(engine, job_id, task_id="t1", heartbeat_seconds=60) as context:
        assert context.parameters == {"x": 1}
        assert read(engine, job_id).status == JobStatus.RUNNING
        context.progress(5, 10, "half way")
        assert (read(engine, job_id).progress_done, read(engine, job_id).message) == (5, "half way")
        context.result["answer"] = 42
    job = read(engine, job_id)
    assert job.status == JobStatus.SUCCEEDED and job.result == {"answer": 42}
    assert job.celery_task_id == "t1" and job.worker
    assert (
        job.started_at is not None
        and job.finished_at is not None
        and job.started_at <= job.finished_at
    )


def test_a_cancel_request_stops_the_job_at_its_next_progress_report(engine: Engine) -> None:
    job_id = new_job(engine)
    reached = []
    with running_job(engine, job_id, task_id=None, heartbeat_seconds=60) as context:
        with Session(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.cancel_requested = True
            session.add(job)
            session.commit()
        context.progress(1, 10, "step")
        reached.append("after")
    assert reached == []
    assert read(engine, job_id).status == JobStatus.CANCELLED


def test_an_error_fails_the_job_with_its_message(engine: Engine) -> None:
    job_id = new_job(engine)
    with pytest.raises(ValueError), running_job(engine, job_id, task_id=None, heartbeat_seconds=60):
        raise ValueError("line 7: not valid JSON")
    job = read(engine, job_id)
    assert job.status == JobStatus.FAILED and job.error == "line 7: not valid JSON"


def test_heartbeats_continue_while_a_long_step_runs(engine: Engine) -> None:
    job_id = new_job(engine)
    with running_job(engine, job_id, task_id=None, heartbeat_seconds=0.2):
        first = read(engine, job_id).heartbeat_at
        time.sleep(0.8)
        later = read(engine, job_id).heartbeat_at
    assert first is not None and later is not None and later > first


@pytest.mark.parametrize("status", [JobStatus.CANCELLED, JobStatus.SUCCEEDED])
def test_a_job_that_already_ended_is_skipped(engine: Engine, status: JobStatus) -> None:
    job_id = new_job(engine, status=status)
    with pytest.raises(JobSkipped), running_job(engine, job_id, task_id=None, heartbeat_seconds=60):
        pytest.fail("the body must not run")
    assert read(engine, job_id).status == status
