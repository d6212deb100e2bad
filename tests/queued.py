"""Runs the job a web test queued, in this process, with the worker's own code."""

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Job, JobStatus
from tests.conftest import RecordingQueue
from worker.dataset_build import build_dataset
from worker.eval_job import run_labeller_eval
from worker.generation import run_generation
from worker.labelling import run_labelling
from worker.lifecycle import running_job
from worker.reply_pairs import run_reply_pairs
from worker.training_job import run_training

# The stage each Celery task runs (worker/tasks.py), by task name.
STAGES: dict[str, Callable[..., None]] = {
    "worker.tasks.run_generation": run_generation,
    "worker.tasks.run_build_dataset": build_dataset,
    "worker.tasks.run_training": run_training,
    "worker.tasks.run_reply_pairs": run_reply_pairs,
    "worker.tasks.run_labelling": run_labelling,
    "worker.tasks.run_labeller_eval": run_labeller_eval,
}


def run_queued(engine: Engine, queue: RecordingQueue, **stage_arguments: Any) -> Job:
    """Runs the job sent last, as the worker would, and returns it; it must have succeeded."""
    task, job_id, _ = queue.sent[-1]
    with running_job(engine, job_id, task_id=None, heartbeat_seconds=60) as context:
        STAGES[task](engine, context, **stage_arguments)
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
        return job


def redirect_id(response: Any) -> int:
    """The id at the end of a 303 redirect's address (the new job or dataset)."""
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])
