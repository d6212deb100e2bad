"""Celery tasks: each takes a job id, re-reads its row, and runs one stage inside `running_job`.

Every task is the same wrapper around a different stage, so they are registered from one table.
A chunked stage's task is its planner (worker.chunk_runner.plan_run): it splits the run into
chunks and sends `run_chunk` for each on the job's queue.
A stage is named by its import path and imported when its first job arrives: the worker starts
without torch, and a CPU-only worker never loads the training stack.
"""

from collections.abc import Callable
from importlib import import_module

from celery import Task
from celery.utils.log import get_task_logger
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

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
    "worker.tasks.run_build_dataset": "worker.dataset_build:build_dataset",
    "worker.tasks.run_training": "worker.training_job:run_training",
    "worker.tasks.run_labeller_eval": "worker.eval_job:run_labeller_eval",
    "worker.tasks.run_judge_check": "worker.judge_check_job:run_judge_check",
    "worker.tasks.run_rl": "worker.rl_job:run_rl",
    "worker.tasks.run_constitution_ab": "worker.constitution_ab_job:run_constitution_ab",
}

# The database was away (restarted, failed over) before the task could claim its work: Celery
# sends the message again after a back-off, up to ten times over about five minutes. A chunk
# or job claimed before the error is recovered by its lease or heartbeat instead; a retry of
# it finds it claimed and does nothing.
DATABASE_AWAY = (OperationalError, InterfaceError)
RETRY_OPTIONS = {
    "autoretry_for": DATABASE_AWAY,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}

# Chunked stages: the task plans the run (the job kind picks the stage in worker.chunk_stages).
PLANNERS: set[str] = {
    "worker.tasks.run_generation",
    "worker.tasks.run_reply_pairs",
    "worker.tasks.run_labelling",
    "worker.tasks.run_evaluation",
}


def send_task(task_name: str, args: list[int], queue: str) -> str:
    """Sends by name to a declared queue (its own exchange and routing key)."""
    return str(celery_app.send_task(task_name, args=args, queue=queue).id)


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


def run_planner(job_id: int, task_id: str | None) -> None:
    from worker.chunk_runner import plan_run

    try:
        plan_run(get_engine(), job_id, task_id=task_id, send=send_task)
    except JobSkipped as skipped:
        logger.info("skipping: %s", skipped)


def _register(task_name: str) -> Task:
    @celery_app.task(name=task_name, bind=True, **RETRY_OPTIONS)
    def run_task(self: Task, job_id: int) -> None:
        run_stage(job_id, self.request.id, load_stage(task_name))

    return run_task


def _register_planner(task_name: str) -> Task:
    @celery_app.task(name=task_name, bind=True, **RETRY_OPTIONS)
    def plan_task(self: Task, job_id: int) -> None:
        run_planner(job_id, self.request.id)

    return plan_task


@celery_app.task(name="worker.tasks.run_chunk", **RETRY_OPTIONS)
def run_chunk(job_id: int, index: int) -> None:
    from worker.chunk_runner import run_chunk as run

    run(get_engine(), job_id, index, send=send_task)


TASK_FUNCTIONS: dict[str, Task] = {
    **{name: _register(name) for name in STAGES},
    **{name: _register_planner(name) for name in PLANNERS},
    "worker.tasks.run_chunk": run_chunk,
}

# Every worker process sweeps: re-queues chunks whose lease ran out, re-sends lost jobs.
import worker.sweeper  # noqa: E402, F401
