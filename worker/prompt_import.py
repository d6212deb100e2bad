"""The prompt-import job: reads an uploaded prompt file into a new prompt set."""

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.audit import record_event
from app.prompt_files import (
    ParsedPrompt,
    PromptFileError,
    PromptFormat,
    drop_duplicates,
    parse_prompt_file,
    split_by_purpose,
)
from app.prompt_sets import store_prompt_set
from app.recipe.evaluation import SuitePurpose
from app.specs.base import SpecError
from app.specs.imports import PromptImportSpec, suite_set_name
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


def _suites(
    spec: PromptImportSpec, parsed: list[ParsedPrompt]
) -> list[tuple[str, SuitePurpose | None, list[ParsedPrompt]]]:
    """(name, purpose, prompts) of each set to store: one, or for an XSTest file one per
    purpose its labels give."""
    if spec.format is PromptFormat.XSTEST:
        return [
            (suite_set_name(spec.name, purpose), purpose, prompts)
            for purpose, prompts in split_by_purpose(parsed).items()
        ]
    return [(spec.name, spec.purpose, parsed)]


def _import_prompts(engine: Engine, context: JobContext, spec: PromptImportSpec) -> None:
    context.progress(0, None, f"reading {spec.filename}")
    try:
        parsed = parse_prompt_file(Path(spec.path), spec.file_spec(), max_bytes=upload_byte_limit())
    except PromptFileError as exc:
        # The job's error names the user's file, not the server's copy.
        raise ValueError(f"{spec.filename}: {exc}") from None
    sets = [
        (name, purpose, *drop_duplicates(prompts))
        for name, purpose, prompts in _suites(spec, parsed)
    ]
    kept = sum(len(prompts) for _, _, prompts, _ in sets)
    dropped = sum(dropped for *_, dropped in sets)
    # SQLite lets one connection write at a time, so progress is reported before the one
    # transaction that stores the sets, not from inside it.
    context.progress(0, kept, f"storing {kept} prompts ({dropped} duplicates dropped)")
    with Session(engine) as session:
        ids = []
        for name, purpose, prompts, set_dropped in sets:
            prompt_set = store_prompt_set(
                session=session,
                name=name,
                description=spec.description,
                source=spec.filename,
                source_format=spec.format.value,
                prompts=prompts,
                duplicates_dropped=set_dropped,
                created_by_id=spec.user_id,
                import_job_id=context.job_id,
                purpose=purpose,
            )
            record_event(
                session=session,
                actor=spec.user_id,
                action="prompt_set.import",
                object_type="prompt_set",
                object_id=prompt_set.id,
                job_id=context.job_id,
                prompts=len(prompts),
                duplicates_dropped=set_dropped,
                purpose=purpose.value if purpose else None,
            )
            ids.append(prompt_set.id)
        session.commit()
        context.result["prompt_set_id"] = ids[0]
        context.result["prompt_set_ids"] = ids
    context.progress(kept, kept, f"imported {kept} prompts, {dropped} duplicates dropped")
