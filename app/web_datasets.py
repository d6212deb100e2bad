"""Launching dataset builds from the web app's forms (web-only): the build form's own checks,
the job, and the AI-feedback run's options. What the build job shares is app.dataset_builds."""

from collections.abc import Mapping
from pathlib import Path

from fastapi import UploadFile
from sqlmodel import Session

from app.dataset_builds import generation_runs, new_dataset
from app.forms import parse_spec
from app.ids import parse_id
from app.jobs import launch_job
from app.models import Dataset, Job, User
from app.queue import JobQueue
from app.specs.datasets import (
    DatasetBuildJobSpec,
    DatasetBuildSpec,
    DatasetKind,
    FeedbackOptions,
)
from app.uploads import upload_error

# What the build form asks for: all but the kind and the AI-feedback options (their defaults).
BUILD_FIELDS = tuple(
    name
    for name in DatasetBuildSpec.model_fields
    if name not in {"kind", "min_margin", "prefer_human"}
)


def build_form_errors(
    *,
    session: Session,
    form: Mapping[str, str],
    spec: DatasetBuildSpec | None,
    action: str,
    helpful_file: UploadFile | None,
) -> dict[str, str]:
    """What the spec cannot know: a name for a real build, runs that stored traces, and an
    upload that matches the number of helpful rows asked for."""
    errors: dict[str, str] = {}
    if action == "build" and not form.get("name", "").strip():
        errors["name"] = "Give the dataset a name."
    chosen = {parse_id(line) for line in form.get("runs", "").splitlines() if line.strip()}
    known = {job.id for job, _ in generation_runs(session=session)}
    if chosen and None not in chosen and not chosen <= known:
        unknown = sorted(job_id for job_id in chosen - known if job_id is not None)
        errors["runs"] = f"No stored traces for run(s) {unknown}."
    file_error = upload_error(helpful_file, required=False)
    if file_error:
        errors["helpful_file"] = file_error
    elif helpful_file is not None and helpful_file.filename:
        if spec is not None and not spec.helpful_max_rows:
            errors["helpful_max_rows"] = "Say how many helpful rows to mix in."
    elif spec is not None and spec.helpful_max_rows:
        errors["helpful_file"] = "Upload the file of helpful rows to mix in."
    return errors


def launch_build(
    *,
    session: Session,
    queue: JobQueue,
    spec: DatasetBuildSpec,
    user: User,
    helpful_path: Path | None = None,
    helpful_filename: str = "",
) -> tuple[Dataset, Job]:
    """Stores the dataset's row as building and queues the job that writes its files; the job
    row stores the spec, the dataset's id and the upload's copy."""
    dataset = new_dataset(session=session, spec=spec, helpful_filename=helpful_filename, user=user)
    assert dataset.id is not None and user.id is not None  # flushed; a signed-in user
    job_spec = DatasetBuildJobSpec(
        **spec.model_dump(),
        dataset_id=dataset.id,
        user_id=user.id,
        helpful_path=str(helpful_path) if helpful_path else "",
        helpful_filename=helpful_filename,
    )
    job = launch_job(
        session=session,
        queue=queue,
        kind="build_dataset",
        parameters=job_spec.to_parameters(),
        user=user,
    )
    dataset.build_job_id = job.id
    session.add(dataset)
    session.commit()
    session.refresh(dataset)
    return dataset, job


def parse_feedback_options(
    form: Mapping[str, str],
) -> tuple[FeedbackOptions | None, dict[str, str]]:
    """An AI-feedback run's dataset options from its form (percent in the form); the name and
    description are checked here too, by the build spec's rules, before a build is asked for."""
    options, errors = parse_spec(FeedbackOptions, form)
    _, build_errors = parse_spec(DatasetBuildSpec, form, only=("name", "description"))
    errors.update({f: m for f, m in build_errors.items() if f in ("name", "description")})
    return (None if errors else options), errors


def create_dataset(
    *,
    session: Session,
    queue: JobQueue,
    name: str,
    description: str,
    job_ids: list[int],
    options: FeedbackOptions,
    helpful_path: Path | None,
    helpful_filename: str,
    user: User,
    kind: DatasetKind = "ai-feedback",
) -> tuple[Dataset, Job]:
    """A build as an AI-feedback run's form (app/routes/feedback.py) asks for it: its run and
    options become the build's spec."""
    spec = DatasetBuildSpec(
        kind=kind, name=name, description=description, runs=tuple(job_ids), **options.model_dump()
    )
    return launch_build(
        session=session,
        queue=queue,
        spec=spec,
        user=user,
        helpful_path=helpful_path,
        helpful_filename=helpful_filename,
    )
