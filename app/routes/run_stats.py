from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from app.auth import Author, Viewer
from app.ids import PositiveId
from app.models import Job
from app.recipe.agreement import interpret
from app.session_dep import SessionDep
from app.templating import render
from app.traces import run_review_stats, set_reviews_needed

router = APIRouter(prefix="/jobs")


def _generation_job(session: SessionDep, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != "generate":
        raise HTTPException(404, f"no generation run {job_id}")
    return job


@router.get("/{job_id}/stats")
def stats(request: Request, session: SessionDep, user: Viewer, job_id: PositiveId) -> Response:
    job = _generation_job(session, job_id)
    result = run_review_stats(session=session, job=job)
    context = {"job": job, "stats": result, "interpret": interpret}
    return render(request, "traces/stats.html", context)


@router.post("/{job_id}/reviews-needed")
def change_reviews_needed(
    request: Request,
    session: SessionDep,
    user: Author,
    job_id: PositiveId,
    reviews_needed: Annotated[int, Form()],
) -> Response:
    """A run setting: how many reviewers must judge each trace. Statuses follow at once."""
    job = _generation_job(session, job_id)
    if not 1 <= reviews_needed <= 10:
        raise HTTPException(400, "between 1 and 10 reviews a trace")
    set_reviews_needed(session=session, job=job, reviews_needed=reviews_needed, user=user)
    session.commit()
    return RedirectResponse(f"/jobs/{job.id}/stats", status_code=303)
