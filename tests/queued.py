"""Runs the job a web test queued, in this process, with the worker's own code."""

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Job, JobStatus
from tests.conftest import RecordingQueue
from worker.chunk_runner import run_in_process
from worker.lifecycle import running_job
from worker.tasks import PLANNERS, load_stage


def run_job_here(engine: Engine, task: str, job_id: int, **stage_arguments: Any) -> None:
    """Runs a sent task as the worker would: a chunked stage's planner and then every chunk it
    queued (worker.chunk_runner), any other stage inside `running_job`."""
    if task in PLANNERS:
        run_in_process(engine, job_id, **stage_arguments)
        return
    with running_job(engine, job_id, task_id=None, heartbeat_seconds=60) as context:
        # The stage the task runs in the worker (worker/tasks.py), by the same task name.
        load_stage(task)(engine, context, **stage_arguments)


def run_queued(engine: Engine, queue: RecordingQueue, **stage_arguments: Any) -> Job:
    """Runs the job sent last, as the worker would, and returns it; it must have succeeded."""
    task, job_id, _ = queue.sent[-1]
    run_job_here(engine, task, job_id, **stage_arguments)
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
        return job


def redirect_id(response: Any) -> int:
    """The id at the end of a 303 redirect's address (the new job or dataset)."""
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])
