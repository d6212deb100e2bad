"""The database side of datasets: reading runs as plain records, checking a build, launching it."""

from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.audit import record_event
from app.constitutions import to_document
from app.datasets.card import SourceRun
from app.datasets.feedback_rows import FeedbackOptions
from app.datasets.records import StepRecord, TraceRecord
from app.datasets.rows import DatasetOptions, ReviewFilter
from app.forms import NumberFields, parse_numbers
from app.jobs import launch_job, runs_with_counts
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
from app.queue import JobQueue
from app.recipe.formats import write_project


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


# Percentages in the form, shares in the options.
PERCENT_FIELDS = ("min_change", "test_fraction")
OPTION_FIELDS: NumberFields = {
    "min_change": (float, 0.0, 100.0),
    "test_fraction": (float, 0.0, 50.0),
    "min_chars": (int, 0, 1_000_000),
    "max_chars": (int, 0, 10_000_000),
    "max_prompt_chars": (int, 0, 10_000_000),
    "seed": (int, 0, 2**31 - 1),
    "helpful_max_rows": (int, 0, 10_000_000),
}


def parse_options(form: dict[str, str]) -> tuple[DatasetOptions | None, dict[str, str]]:
    """Dataset options from the build form; errors by field name when any value is wrong."""
    errors: dict[str, str] = {}
    if form.get("review_filter") not in {f.value for f in ReviewFilter}:
        errors["review_filter"] = "Choose which reviewed traces to keep."
    # An empty box means 0 (no limit, no filter).
    values = parse_numbers(
        {name: form.get(name, "").strip() or "0" for name in OPTION_FIELDS}, OPTION_FIELDS, errors
    )
    for name in PERCENT_FIELDS:
        if name in values:
            values[name] /= 100
    if values.get("max_chars") and values["max_chars"] < values.get("min_chars", 0):
        errors["max_chars"] = "The longest allowed answer is shorter than the shortest."
    if errors:
        return None, errors
    return (
        DatasetOptions(
            review_filter=ReviewFilter(form["review_filter"]),
            min_change=values["min_change"],
            min_chars=values["min_chars"],
            max_chars=values["max_chars"] or None,
            max_prompt_chars=values["max_prompt_chars"] or None,
            drop_duplicates=bool(form.get("drop_duplicates")),
            split_halves=bool(form.get("split_halves")),
            test_fraction=values["test_fraction"],
            seed=values["seed"],
            helpful_max_rows=values["helpful_max_rows"],
        ),
        {},
    )


def options_to_json(options: DatasetOptions) -> dict[str, Any]:
    return {**asdict(options), "review_filter": options.review_filter.value}


def options_from_json(data: dict[str, Any]) -> DatasetOptions:
    return DatasetOptions(**{**data, "review_filter": ReviewFilter(data["review_filter"])})


def create_dataset(
    *,
    session: Session,
    queue: JobQueue,
    name: str,
    description: str,
    job_ids: list[int],
    options: DatasetOptions | FeedbackOptions,
    helpful_path: Path | None,
    helpful_filename: str,
    user: User,
    kind: str = "sft+prefs",
) -> tuple[Dataset, Job]:
    """Stores the dataset's row as building and queues the job that writes its files."""
    dataset = Dataset(
        name=name,
        description=description,
        kind=kind,
        source_job_ids=sorted(job_ids),
        options=options_to_json(options)
        if isinstance(options, DatasetOptions)
        else asdict(options),
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
        runs=sorted(job_ids),
    )
    job = launch_job(
        session=session,
        queue=queue,
        kind="build_dataset",
        parameters={
            "dataset_id": dataset.id,
            "helpful_path": str(helpful_path) if helpful_path else "",
            "user_id": user.id,
        },
        user=user,
    )
    dataset.build_job_id = job.id
    session.add(dataset)
    session.commit()
    session.refresh(dataset)
    return dataset, job
