import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import Author, Viewer
from app.dataset_builds import (
    create_dataset,
    generation_runs,
    load_trace_records,
    parse_options,
)
from app.datasets.export import read_preview, zip_format
from app.datasets.helpful_files import parse_helpful_file
from app.datasets.rows import ReviewFilter, build_rows
from app.db import SessionDep
from app.ids import IdOrZero, PositiveId
from app.models import Dataset, Job, JobStatus
from app.prompt_files import PromptFileError
from app.queue import JobQueue, get_job_queue
from app.templating import render
from app.upload_store import remove_upload, upload_byte_limit
from app.uploads import save_upload, upload_error
from app.users import username_of

router = APIRouter(prefix="/datasets")

DEFAULTS = {
    "name": "",
    "description": "",
    "review_filter": ReviewFilter.EXCLUDE_REJECTED.value,
    "min_change": "0",
    "min_chars": "1",
    "max_chars": "0",
    "max_prompt_chars": "0",
    "drop_duplicates": "1",
    "split_halves": "",
    "test_fraction": "10",
    "seed": "0",
    "helpful_max_rows": "0",
}
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
    runs: list[int],
    errors: dict[str, str],
    preview: dict[str, Any] | None = None,
) -> Response:
    context = {
        "datasets": session.exec(select(Dataset).order_by(col(Dataset.id).desc())).all(),
        "runs": generation_runs(session=session),
        "chosen_runs": set(runs),
        "form": form,
        "errors": errors,
        "review_filters": REVIEW_FILTERS,
        "preview": preview,
    }
    return render(request, "datasets/list.html", context, status_code=400 if errors else 200)


@router.get("")
def datasets(request: Request, session: SessionDep, user: Viewer, run: IdOrZero = 0) -> Response:
    return _list_page(request, session, dict(DEFAULTS), [run] if run else [], {})


@router.post("")
def build(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    runs: Annotated[list[PositiveId] | None, Form()] = None,
    helpful_file: Annotated[UploadFile | None, File()] = None,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    review_filter: Annotated[str, Form()] = "",
    min_change: Annotated[str, Form()] = "0",
    min_chars: Annotated[str, Form()] = "1",
    max_chars: Annotated[str, Form()] = "0",
    max_prompt_chars: Annotated[str, Form()] = "0",
    drop_duplicates: Annotated[str, Form()] = "",
    split_halves: Annotated[str, Form()] = "",
    test_fraction: Annotated[str, Form()] = "10",
    seed: Annotated[str, Form()] = "0",
    helpful_max_rows: Annotated[str, Form()] = "0",
    action: Annotated[str, Form()] = "build",
) -> Response:
    form = {
        "name": name.strip(),
        "description": description.strip()[:2000],
        "review_filter": review_filter,
        "min_change": min_change,
        "min_chars": min_chars,
        "max_chars": max_chars,
        "max_prompt_chars": max_prompt_chars,
        "drop_duplicates": drop_duplicates,
        "split_halves": split_halves,
        "test_fraction": test_fraction,
        "seed": seed,
        "helpful_max_rows": helpful_max_rows,
    }
    job_ids = sorted(set(runs or []))
    options, errors = parse_options(form)
    if action == "build" and not form["name"]:
        errors["name"] = "Give the dataset a name."
    elif len(form["name"]) > 200:
        errors["name"] = "At most 200 characters."
    known = {job.id for job, _ in generation_runs(session=session)}
    if not job_ids:
        errors["runs"] = "Choose at least one generation run."
    elif not set(job_ids) <= known:
        errors["runs"] = f"No stored traces for run(s) {sorted(set(job_ids) - known)}."
    helpful_path: Path | None = None
    file_error = upload_error(helpful_file, required=False)
    if file_error:
        errors["helpful_file"] = file_error
    elif helpful_file is not None and helpful_file.filename:
        if options is not None and not options.helpful_max_rows:
            errors["helpful_max_rows"] = "Say how many helpful rows to mix in."
    elif options is not None and options.helpful_max_rows:
        errors["helpful_file"] = "Upload the file of helpful rows to mix in."
    if errors or options is None:
        return _list_page(request, session, form, job_ids, errors)

    helpful = []
    helpful_name = (helpful_file.filename or "") if helpful_file is not None else ""
    if helpful_file is not None and helpful_name:
        helpful_path = save_upload(helpful_file)
    try:
        if helpful_path is not None:
            try:
                helpful = parse_helpful_file(
                    helpful_path,
                    max_rows=options.helpful_max_rows,
                    source_name=helpful_name,
                    max_bytes=upload_byte_limit(),
                )
            except PromptFileError as exc:
                remove_upload(helpful_path)
                errors["helpful_file"] = f"{helpful_name}: {exc}"
                return _list_page(request, session, form, job_ids, errors)
        # The same rows the job will write: a build that would leave nothing is refused here.
        built = build_rows(load_trace_records(session=session, job_ids=job_ids), helpful, options)
        preview = {"counts": built.counts, "dropped": built.dropped, "total": built.total_rows}
        if built.total_rows == 0:
            remove_upload(helpful_path)
            errors["runs"] = "No rows are left after filtering: loosen the filters or add runs."
            return _list_page(request, session, form, job_ids, errors, preview)
        if action == "preview":
            remove_upload(helpful_path)
            return _list_page(request, session, form, job_ids, {}, preview)
        dataset, job = create_dataset(
            session=session,
            queue=queue,
            name=form["name"],
            description=form["description"],
            job_ids=job_ids,
            options=options,
            helpful_path=helpful_path,
            helpful_filename=helpful_name if helpful_path else "",
            user=user,
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
