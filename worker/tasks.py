"""Celery tasks: each takes a job id, re-reads its row, and runs one stage inside `running_job`."""

from pathlib import Path
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger
from sqlmodel import Session

from app.audit import record_event
from app.db import get_engine
from app.prompt_files import (
    ImportSpec,
    PromptFileError,
    PromptFormat,
    drop_duplicates,
    parse_prompt_file,
)
from app.prompt_sets import store_prompt_set
from app.settings import get_settings
from app.upload_store import remove_upload, upload_byte_limit
from worker.celery_app import celery_app
from worker.lifecycle import JobContext, JobSkipped, running_job

logger = get_task_logger(__name__)


def import_prompts(engine: Any, context: JobContext) -> None:
    """Parses the uploaded file, then stores the whole set in one transaction or nothing; the
    upload is removed either way (a failed import is started again by a new upload)."""
    try:
        _import_prompts(engine, context)
    finally:
        remove_upload(context.parameters["path"])


def _import_prompts(engine: Any, context: JobContext) -> None:
    params = context.parameters
    path = Path(params["path"])
    spec = ImportSpec(
        format=PromptFormat(params["format"]),
        field=params.get("field") or None,
        column=params.get("column") or None,
    )
    context.progress(0, None, f"reading {params.get('filename', path.name)}")
    try:
        parsed = parse_prompt_file(path, spec, max_bytes=upload_byte_limit())
    except PromptFileError as exc:
        # The job's error names the user's file, not the server's copy.
        raise ValueError(f"{params.get('filename', path.name)}: {exc}") from None
    prompts, dropped = drop_duplicates(parsed)
    # SQLite lets one connection write at a time, so progress is reported before the one
    # transaction that stores the set, not from inside it.
    context.progress(
        0, len(prompts), f"storing {len(prompts)} prompts ({dropped} duplicates dropped)"
    )
    with Session(engine) as session:
        prompt_set = store_prompt_set(
            session=session,
            name=params["name"],
            description=params.get("description", ""),
            source=params.get("filename", path.name),
            source_format=spec.format.value,
            prompts=prompts,
            duplicates_dropped=dropped,
            created_by_id=params.get("user_id"),
            import_job_id=context.job_id,
        )
        record_event(
            session=session,
            actor=params.get("user_id"),
            action="prompt_set.import",
            object_type="prompt_set",
            object_id=prompt_set.id,
            job_id=context.job_id,
            prompts=len(prompts),
            duplicates_dropped=dropped,
        )
        session.commit()
        context.result["prompt_set_id"] = prompt_set.id
    context.progress(
        len(prompts), len(prompts), f"imported {len(prompts)} prompts, {dropped} duplicates dropped"
    )


@celery_app.task(name="worker.tasks.run_import_prompts", bind=True)
def run_import_prompts(self: Task, job_id: int) -> None:
    run_stage(job_id, self.request.id, import_prompts)


@celery_app.task(name="worker.tasks.run_generation", bind=True)
def run_generation_task(self: Task, job_id: int) -> None:
    from worker.generation import run_generation

    run_stage(job_id, self.request.id, run_generation)


@celery_app.task(name="worker.tasks.run_build_dataset", bind=True)
def run_build_dataset_task(self: Task, job_id: int) -> None:
    from worker.dataset_build import build_dataset

    run_stage(job_id, self.request.id, build_dataset)


@celery_app.task(name="worker.tasks.run_training", bind=True)
def run_training_task(self: Task, job_id: int) -> None:
    from worker.training_job import run_training

    run_stage(job_id, self.request.id, run_training)


@celery_app.task(name="worker.tasks.run_reply_pairs", bind=True)
def run_reply_pairs_task(self: Task, job_id: int) -> None:
    from worker.reply_pairs import run_reply_pairs

    run_stage(job_id, self.request.id, run_reply_pairs)


@celery_app.task(name="worker.tasks.run_labelling", bind=True)
def run_labelling_task(self: Task, job_id: int) -> None:
    from worker.labelling import run_labelling

    run_stage(job_id, self.request.id, run_labelling)


@celery_app.task(name="worker.tasks.run_labeller_eval", bind=True)
def run_labeller_eval_task(self: Task, job_id: int) -> None:
    from worker.eval_job import run_labeller_eval

    run_stage(job_id, self.request.id, run_labeller_eval)


def run_stage(job_id: int, task_id: str | None, stage: Any) -> None:
    engine = get_engine()
    settings = get_settings()
    try:
        with running_job(
            engine, job_id, task_id=task_id, heartbeat_seconds=settings.JOB_HEARTBEAT_SECONDS
        ) as context:
            stage(engine, context)
    except JobSkipped as skipped:
        logger.info("skipping: %s", skipped)
