"""The domain side of dataset builds, shared by the web app and the build job: runs read as
plain records, a build spec mapped to the row builders' options, and the dataset's row.

Launching a build (the form, the upload, the job) is web-only: app/web_datasets.py.
"""

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.audit import record_event
from app.constitutions import to_document
from app.datasets.card import SourceRun
from app.datasets.records import HelpfulExample, StepRecord, TraceRecord
from app.datasets.rows import BuiltDataset, DatasetOptions, build_rows
from app.job_records import runs_with_counts
from app.models import (
    ConstitutionVersion,
    Dataset,
    Job,
    LanguageModel,
    Prompt,
    Review,
    Trace,
    TraceStep,
    User,
)
from app.prompt_sets import prompt_messages
from app.recipe.formats import write_project
from app.specs.datasets import DatasetBuildSpec, FeedbackOptions, TraceFilters


def generation_runs(*, session: Session) -> list[tuple[Job, int]]:
    """Every generation run that stored traces, newest first, with its trace count."""
    return runs_with_counts(session=session, job_id=Trace.job_id, kind="generate")


def load_trace_records(*, session: Session, job_ids: list[int]) -> list[TraceRecord]:
    """The runs' traces as plain records, with their steps and reviewers' corrections.

    Three queries whatever the number of traces: traces with their prompts, steps, corrections.
    """
    traces = session.execute(
        sa_select(Trace, col(Prompt.text), col(Prompt.context))
        .join(Prompt, col(Prompt.id) == Trace.prompt_id)
        .where(col(Trace.job_id).in_(job_ids))
        .order_by(col(Trace.id))
    ).all()
    steps: dict[int, list[StepRecord]] = {}
    for step in session.exec(
        select(TraceStep)
        .join(Trace, col(Trace.id) == TraceStep.trace_id)
        .where(col(Trace.job_id).in_(job_ids))
        .order_by(col(TraceStep.trace_id), col(TraceStep.round))
    ):
        steps.setdefault(step.trace_id, []).append(
            StepRecord(
                round=step.round,
                principle_key=step.principle_key,
                critique_request=step.critique_request,
                critique=step.critique,
                revision_request=step.revision_request,
                revision=step.revision,
            )
        )
    # Where several reviewers corrected a trace, the latest correction wins.
    corrections: dict[int, str] = {}
    for trace_id, text in session.execute(
        sa_select(col(Review.trace_id), col(Review.corrected_text))
        .join(Trace, col(Trace.id) == Review.trace_id)
        .where(col(Trace.job_id).in_(job_ids), col(Review.corrected_text).is_not(None))
        .order_by(col(Review.updated_at), col(Review.id))
    ):
        if text and text.strip():
            corrections[trace_id] = text
    return [
        TraceRecord(
            trace_id=trace.id or 0,
            job_id=trace.job_id,
            messages=prompt_messages(text, context),
            initial_reply=trace.initial_reply,
            final_reply=trace.final_reply,
            correction=corrections.get(trace.id or 0),
            review_status=trace.review_status,
            steps=steps.get(trace.id or 0, []),
            flags=list(trace.flags),
        )
        for trace, text, context in traces
    ]


def source_runs(*, session: Session, job_ids: list[int]) -> list[SourceRun]:
    """What the dataset card says about each run: model, constitution version and its text."""
    runs = []
    for job_id in sorted(job_ids):
        job = session.get(Job, job_id)
        if job is None:
            continue
        params = job.parameters
        model = session.get(LanguageModel, int(params.get("model_id") or 0))
        version = session.get(ConstitutionVersion, int(params.get("constitution_version_id") or 0))
        label, text = "(deleted)", ""
        if version is not None:
            document = to_document(session=session, version=version)
            label = f"{document.name} {version.label}"
            text = write_project(document, yaml=True, version=version.number).decode()
        runs.append(
            SourceRun(
                job_id=job_id,
                model_name=model.name if model else "(deleted)",
                constitution_label=label,
                constitution_text=text,
                parameters=dict(params),
            )
        )
    return runs


def dataset_options(spec: TraceFilters) -> DatasetOptions:
    """The row builder's options, by the spec's names; 0 is "no limit" in the form."""
    return DatasetOptions(
        review_filter=spec.review_filter,
        min_change=spec.min_change,
        min_chars=spec.min_chars,
        max_chars=spec.max_chars or None,
        max_prompt_chars=spec.max_prompt_chars or None,
        drop_duplicates=spec.drop_duplicates,
        split_halves=spec.split_halves,
        test_fraction=spec.test_fraction,
        seed=spec.seed,
        helpful_max_rows=spec.helpful_max_rows,
    )


def trace_rows(
    records: Sequence[TraceRecord], helpful: Sequence[HelpfulExample], spec: TraceFilters
) -> BuiltDataset:
    """The rows a build writes: the job's, the preview's and the refusal's before a job."""
    return build_rows(records, helpful, dataset_options(spec))


def stored_options(spec: DatasetBuildSpec) -> dict[str, Any]:
    """What the dataset's row shows as its filters: the options its kind of build used."""
    if spec.kind == "ai-feedback":
        return spec.model_dump(mode="json", include=set(FeedbackOptions.model_fields))
    return {**asdict(dataset_options(spec)), "review_filter": spec.review_filter.value}


def new_dataset(
    *, session: Session, spec: DatasetBuildSpec, helpful_filename: str, user: User
) -> Dataset:
    """The dataset's row, building, with its audit event; the caller commits."""
    dataset = Dataset(
        name=spec.name,
        description=spec.description,
        kind=spec.kind,
        source_job_ids=list(spec.runs),
        options=stored_options(spec),
        helpful_source=helpful_filename,
        created_by_id=user.id,
    )
    session.add(dataset)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="dataset.build",
        object_type="dataset",
        object_id=dataset.id,
        runs=list(spec.runs),
    )
    return dataset
