"""Datasets: the build form (its "Count the rows" preview and its refusals), each dataset's page
and status, and downloads."""

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import Author, Viewer
from app.dataset_builds import generation_runs, load_trace_records, trace_rows
from app.datasets.export import read_preview, zip_format
from app.datasets.helpful_files import parse_helpful_file
from app.forms import SubmittedForm, parse_spec, spec_fields, spec_form_values
from app.ids import IdOrZero, PositiveId, parse_id
from app.models import Dataset, Job, JobStatus
from app.prompt_files import PromptFileError
from app.queue import JobQueue, get_job_queue
from app.session_dep import SessionDep
from app.specs.datasets import DatasetBuildSpec, ReviewFilter
from app.templating import render
from app.upload_store import remove_upload, upload_byte_limit
from app.uploads import save_upload
from app.users import username_of
from app.web_datasets import BUILD_FIELDS, build_form_errors, launch_build

router = APIRouter(prefix="/datasets")

REVIEW_FILTERS = {
    ReviewFilter.ALL.value: "All traces, reviewed or not",
    ReviewFilter.EXCLUDE_REJECTED.value: "Leave out traces reviewers rejected",
    ReviewFilter.APPROVED_ONLY.value: "Only traces reviewers approved",
}
FORMATS = {"jsonl": "JSON lines", "parquet": "Parquet", "hf": "Hugging Face datasets folder"}
SPLITS = ["train_sft", "test_sft", "train_prefs", "test_prefs"]


def _list_page(
    request: Request,
    session: Session,
    form: dict[str, str],
    errors: dict[str, str],
    preview: dict[str, Any] | None = None,
) -> Response:
    chosen = {parse_id(line) for line in form.get("runs", "").splitlines()}
    context = {
        "datasets": session.exec(select(Dataset).order_by(col(Dataset.id).desc())).all(),
        "runs": generation_runs(session=session),
        "chosen_runs": chosen - {None},
        "fields": spec_fields(DatasetBuildSpec),
        "form": form,
        "errors": errors,
        "review_filters": list(REVIEW_FILTERS.items()),
        "preview": preview,
    }
    return render(request, "datasets/list.html", context, status_code=400 if errors else 200)


@router.get("")
def datasets(request: Request, session: SessionDep, user: Viewer, run: IdOrZero = 0) -> Response:
    form = {**spec_form_values(DatasetBuildSpec), "runs": str(run) if run else ""}
    return _list_page(request, session, form, {})


@router.post("")
def build(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    data: SubmittedForm,
    runs: Annotated[list[str] | None, Form()] = None,
    helpful_file: Annotated[UploadFile | None, File()] = None,
    action: Annotated[str, Form()] = "build",
) -> Response:
    # The ticked runs as one id per line: the spec's "ids" form of a tuple.
    form = {**data, "runs": "\n".join(runs or [])}
    spec, errors = parse_spec(DatasetBuildSpec, form, only=BUILD_FIELDS)
    form_errors = build_form_errors(
        session=session, form=form, spec=spec, action=action, helpful_file=helpful_file
    )
    errors = {**form_errors, **errors}
    if errors or spec is None:
        return _list_page(request, session, form, errors)

    helpful = []
    helpful_name = (helpful_file.filename or "") if helpful_file is not None else ""
    helpful_path: Path | None = None
    if helpful_file is not None and helpful_name:
        helpful_path = save_upload(helpful_file)
    try:
        if helpful_path is not None:
            try:
                helpful = parse_helpful_file(
                    helpful_path,
                    max_rows=spec.helpful_max_rows,
                    source_name=helpful_name,
                    max_bytes=upload_byte_limit(),
                )
            except PromptFileError as exc:
                remove_upload(helpful_path)
                errors["helpful_file"] = f"{helpful_name}: {exc}"
                return _list_page(request, session, form, errors)
        # The same rows the job will write: a build that would leave nothing is refused here.
        records = load_trace_records(session=session, job_ids=list(spec.runs))
        built = trace_rows(records, helpful, spec)
        preview = {"counts": built.counts, "dropped": built.dropped, "total": built.total_rows}
        if built.total_rows == 0:
            remove_upload(helpful_path)
            errors["runs"] = "No rows are left after filtering: loosen the filters or add runs."
            return _list_page(request, session, form, errors, preview)
        if action == "preview":
            remove_upload(helpful_path)
            return _list_page(request, session, form, {}, preview)
        dataset, job = launch_build(
            session=session,
            queue=queue,
            spec=spec,
            user=user,
            helpful_path=helpful_path,
            helpful_filename=helpful_name if helpful_path else "",
        )
    except BaseException:
        remove_upload(helpful_path)
        raise
    if job.status == JobStatus.FAILED:  # never queued, so no job will read or remove the file
        remove_upload(helpful_path)
    return RedirectResponse(f"/datasets/{dataset.id}", status_code=303)


def _load(session: Session, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise HTTPException(404, f"no dataset {dataset_id}")
    return dataset


def _page_context(session: Session, dataset: Dataset, split: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    if dataset.status == "ready" and split in SPLITS and dataset.counts.get(split):
        rows = read_preview(Path(dataset.folder), split, 20)
    return {
        "dataset": dataset,
        "job": session.get(Job, dataset.build_job_id) if dataset.build_job_id else None,
        "built_by": username_of(session=session, user_id=dataset.created_by_id, default="unknown"),
        "split": split,
        "splits": SPLITS,
        "rows": rows,
        "formats": FORMATS,
    }


@router.get("/{dataset_id}")
def dataset_page(
    request: Request, session: SessionDep, user: Viewer, dataset_id: PositiveId, split: str = ""
) -> Response:
    dataset = _load(session, dataset_id)
    split = split or next((s for s in SPLITS if dataset.counts.get(s)), SPLITS[0])
    return render(request, "datasets/page.html", _page_context(session, dataset, split))


@router.get("/{dataset_id}/status")
def dataset_status(
    request: Request, session: SessionDep, user: Viewer, dataset_id: PositiveId
) -> Response:
    """The build's status fragment; it polls itself only while the dataset is building."""
    dataset = _load(session, dataset_id)
    context = _page_context(session, dataset, "")
    return render(request, "datasets/page.html", context, block="status")


@router.get("/{dataset_id}/download/{fmt}")
def download(session: SessionDep, user: Viewer, dataset_id: PositiveId, fmt: str) -> Response:
    dataset = _load(session, dataset_id)
    if fmt not in FORMATS:
        raise HTTPException(404, f"no format '{fmt}': choose one of {', '.join(FORMATS)}")
    if dataset.status != "ready":
        raise HTTPException(409, f"dataset {dataset_id} is {dataset.status}, not ready")
    folder = Path(dataset.folder)
    target = folder.parent / f"{folder.name}-{fmt}.zip"
    if not target.is_file():
        # Datasets never change once built, so the zip is made once; a private name and a
        # rename keep two downloads at the same time from serving a half-written file.
        staging = folder.parent / f".{target.name}.{uuid.uuid4().hex}"
        zip_format(folder, fmt, staging)
        staging.replace(target)
    safe_name = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset.name)[:80]
    return FileResponse(target, media_type="application/zip", filename=f"{safe_name}-{fmt}.zip")
