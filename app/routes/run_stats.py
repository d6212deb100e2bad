from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from app.audit import record_event
from app.auth import Author, Viewer
from app.db import SessionDep
from app.models import Job, Trace
from app.recipe.agreement import interpret
from app.templating import render
from app.traces import run_review_stats

router = APIRouter(prefix="/jobs")


def _generation_job(session: SessionDep, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != "generate":
        raise HTTPException(404, f"no generation run {job_id}")
    return job


@router.get("/{job_id}/stats")
def stats(request: Request, session: SessionDep, user: Viewer, job_id: int) -> Response:
    job = _generation_job(session, job_id)
    result = run_review_stats(session=session, job=job)
    context = {"job": job, "stats": result, "interpret": interpret}
    return render(request, "traces/stats.html", context)


@router.post("/{job_id}/reviews-needed")
def set_reviews_needed(
    request: Request,
    session: SessionDep,
    user: Author,
    job_id: int,
    reviews_needed: Annotated[int, Form()],
) -> Response:
    """A run setting: how many reviewers must judge each trace. Statuses follow at once."""
    job = _generation_job(session, job_id)
    if not 1 <= reviews_needed <= 10:
        raise HTTPException(400, "between 1 and 10 reviews a trace")
    before = job.reviews_needed
    job.reviews_needed = reviews_needed
    session.add(job)
    from sqlmodel import select

    from app.traces import _refresh_status

    for trace in session.exec(select(Trace).where(Trace.job_id == job.id)):
        _refresh_status(session, trace, reviews_needed)
    record_event(
        session=session,
        actor=user,
        action="run.reviews_needed",
        object_type="job",
        object_id=job.id,
        before=before,
        after=reviews_needed,
    )
    session.commit()
    return RedirectResponse(f"/jobs/{job.id}/stats", status_code=303)
