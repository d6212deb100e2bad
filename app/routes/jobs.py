from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author, Viewer
from app.db import SessionDep
from app.generation import recent_traces
from app.ids import PositiveId
from app.job_records import list_jobs, mark_lost_jobs
from app.jobs import RESUMABLE, request_cancel, resume_job
from app.models import Job
from app.queue import JobQueue, get_job_queue
from app.settings import get_settings
from app.templating import is_htmx, render
from app.training import metric_curves
from app.users import username_of, usernames

router = APIRouter(prefix="/jobs")


def _load(session: Session, job_id: int) -> Job:
    mark_lost_jobs(session=session, lost_after_seconds=get_settings().JOB_LOST_AFTER_SECONDS)
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("")
def jobs(request: Request, session: SessionDep, user: Viewer) -> Response:
    mark_lost_jobs(session=session, lost_after_seconds=get_settings().JOB_LOST_AFTER_SECONDS)
    rows = list_jobs(session=session)
    names = usernames(session=session, ids={job.created_by_id for job in rows if job.created_by_id})
    return render(request, "jobs/list.html", {"jobs": rows, "names": names})


@router.get("/{job_id}")
def job_page(request: Request, session: SessionDep, user: Viewer, job_id: PositiveId) -> Response:
    job = _load(session, job_id)
    context = {
        **_status_context(session, job),
        "launched_by": username_of(session=session, user_id=job.created_by_id, default="system"),
    }
    return render(request, "jobs/page.html", context)


def _status_context(session: Session, job: Job) -> dict[str, object]:
    traces, trace_count = (
        recent_traces(session=session, job_id=job.id or 0) if job.kind == "generate" else ([], 0)
    )
    return {
        "job": job,
        "curves": metric_curves(session=session, job_id=job.id or 0) if job.kind == "train" else [],
        "traces": traces,
        "trace_count": trace_count,
        "resumable": job.kind in RESUMABLE,
    }


@router.get("/{job_id}/status")
def job_status(request: Request, session: SessionDep, user: Viewer, job_id: PositiveId) -> Response:
    """The progress fragment; it polls itself only while the job is queued or running."""
    job = _load(session, job_id)
    return render(request, "jobs/page.html", _status_context(session, job), block="status")


@router.post("/{job_id}/resume")
def resume(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    job_id: PositiveId,
) -> Response:
    try:
        job = resume_job(session=session, queue=queue, job=_load(session, job_id), user=user)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.post("/{job_id}/cancel")
def cancel(request: Request, session: SessionDep, user: Author, job_id: PositiveId) -> Response:
    job = request_cancel(session=session, job=_load(session, job_id), user=user)
    if is_htmx(request):
        return render(request, "jobs/page.html", _status_context(session, job), block="status")
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
