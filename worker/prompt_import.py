"""The prompt-import job: reads an uploaded prompt file into a new prompt set."""

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.audit import record_event
from app.prompt_files import PromptFileError, drop_duplicates, parse_prompt_file
from app.prompt_sets import store_prompt_set
from app.specs.base import SpecError
from app.specs.imports import PromptImportSpec
from app.upload_store import remove_upload, upload_byte_limit
from worker.lifecycle import JobContext


def import_prompts(engine: Engine, context: JobContext) -> None:
    """Parses the uploaded file, then stores the whole set in one transaction or nothing; the
    upload is removed either way (a failed import is started again by a new upload)."""
    try:
        spec = PromptImportSpec.from_parameters(context.parameters)
    except SpecError:
        # A row that does not validate still names the upload it was to read.
        remove_upload(context.parameters.get("path"))
        raise
    try:
        _import_prompts(engine, context, spec)
    finally:
        remove_upload(spec.path)


def _import_prompts(engine: Engine, context: JobContext, spec: PromptImportSpec) -> None:
    context.progress(0, None, f"reading {spec.filename}")
    try:
        parsed = parse_prompt_file(Path(spec.path), spec.file_spec(), max_bytes=upload_byte_limit())
    except PromptFileError as exc:
        # The job's error names the user's file, not the server's copy.
        raise ValueError(f"{spec.filename}: {exc}") from None
    prompts, dropped = drop_duplicates(parsed)
    # SQLite lets one connection write at a time, so progress is reported before the one
    # transaction that stores the set, not from inside it.
    context.progress(
        0, len(prompts), f"storing {len(prompts)} prompts ({dropped} duplicates dropped)"
    )
    with Session(engine) as session:
        prompt_set = store_prompt_set(
            session=session,
            name=spec.name,
            description=spec.description,
            source=spec.filename,
            source_format=spec.format.value,
            prompts=prompts,
            duplicates_dropped=dropped,
            created_by_id=spec.user_id,
            import_job_id=context.job_id,
        )
        record_event(
            session=session,
            actor=spec.user_id,
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
