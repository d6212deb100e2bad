"""Celery tasks: each takes a job id, re-reads its row, and runs one stage inside `running_job`.

Every task is the same wrapper around a different stage, so they are registered from one table.
A stage is named by its import path and imported when its first job arrives: the worker starts
without torch, and a CPU-only worker never loads the training stack.
"""

from collections.abc import Callable
from importlib import import_module

from celery import Task
from celery.utils.log import get_task_logger
from sqlalchemy.engine import Engine

from app.db import get_engine
from app.settings import get_settings
from worker.celery_app import celery_app
from worker.lifecycle import JobContext, JobSkipped, running_job

logger = get_task_logger(__name__)

Stage = Callable[[Engine, JobContext], None]

# The stage each task runs, by task name ("module:function"); the web app sends these names,
# and app.celery_config.TASKS gives each its queue.
STAGES: dict[str, str] = {
    "worker.tasks.run_import_prompts": "worker.prompt_import:import_prompts",
    "worker.tasks.run_generation": "worker.generation:run_generation",
    "worker.tasks.run_build_dataset": "worker.dataset_build:build_dataset",
    "worker.tasks.run_training": "worker.training_job:run_training",
    "worker.tasks.run_reply_pairs": "worker.reply_pairs:run_reply_pairs",
    "worker.tasks.run_labelling": "worker.labelling:run_labelling",
    "worker.tasks.run_labeller_eval": "worker.eval_job:run_labeller_eval",
}


def load_stage(task_name: str) -> Stage:
    """The stage function a task runs, imported on first use."""
    module, function = STAGES[task_name].split(":")
    stage: Stage = getattr(import_module(module), function)
    return stage


def run_stage(job_id: int, task_id: str | None, stage: Stage) -> None:
    engine = get_engine()
    settings = get_settings()
    try:
        with running_job(
            engine, job_id, task_id=task_id, heartbeat_seconds=settings.JOB_HEARTBEAT_SECONDS
        ) as context:
            stage(engine, context)
    except JobSkipped as skipped:
        logger.info("skipping: %s", skipped)


def _register(task_name: str) -> Task:
    @celery_app.task(name=task_name, bind=True)
    def run_task(self: Task, job_id: int) -> None:
        run_stage(job_id, self.request.id, load_stage(task_name))

    return run_task


TASK_FUNCTIONS: dict[str, Task] = {name: _register(name) for name in STAGES}
