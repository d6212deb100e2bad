from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author, Viewer
from app.chunks_view import chunk_board
from app.generation import recent_traces
from app.ids import IdOrZero, PositiveId
from app.job_records import list_jobs
from app.jobs import RESUMABLE, RESUME_HINTS, request_cancel, resume_job
from app.metric_charts import CHART_OF, Chart, metric_charts, metrics_after
from app.models import Job
from app.queue import JobQueue, get_job_queue
from app.rl import rl_curve_rank, rl_view
from app.session_dep import SessionDep
from app.templating import is_htmx, render
from app.users import username_of, usernames

router = APIRouter(prefix="/jobs")
# The job kinds whose pages draw metric curves.
CURVE_KINDS = ("train", "rl")


# Reads are reads: marking a silent job lost is the workers' sweeper's work (worker/), so a
# page polled every second never takes the write lock the workers need.
def _load(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("")
def jobs(request: Request, session: SessionDep, user: Viewer) -> Response:
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


def _status_context(
    session: Session, job: Job, after_metric: int | None = None
) -> dict[str, object]:
    """What the status block shows. With `after_metric` (a poll from a page that has the
    curves up to that metric row) only the newer points are read, for static/curves.js to add."""
    job_id = job.id or 0
    traces, trace_count = (
        recent_traces(session=session, job_id=job_id) if job.kind == "generate" else ([], 0)
    )
    charts: list[Chart] = []
    new_points: dict[str, list[tuple[int, float]]] = {}
    metric_cursor = 0
    if job.kind in CURVE_KINDS and after_metric is None:
        charts, metric_cursor = metric_charts(session=session, job_id=job_id)
        if job.kind == "rl":
            charts.sort(key=lambda chart: rl_curve_rank(chart.name))
    elif job.kind in CURVE_KINDS and after_metric is not None:
        new_points, metric_cursor = metrics_after(
            session=session, job_id=job_id, after_id=after_metric
        )
    return {
        "job": job,
        "charts": charts,
        "chart_of": CHART_OF,
        "new_points": new_points,
        "incremental": after_metric is not None,
        "metric_cursor": metric_cursor,
        "chunks": chunk_board(session=session, job_id=job_id),
        "traces": traces,
        "trace_count": trace_count,
        "resumable": job.kind in RESUMABLE,
        "resume_hints": RESUME_HINTS,
        "rl": rl_view(session=session, job=job) if job.kind == "rl" else None,
    }


@router.get("/{job_id}/status")
def job_status(
    request: Request,
    session: SessionDep,
    user: Viewer,
    job_id: PositiveId,
    after_metric: Annotated[IdOrZero | None, Query()] = None,
) -> Response:
    """The progress fragment; it polls itself only while the job is queued or running."""
    job = _load(session, job_id)
    context = _status_context(session, job, after_metric)
    return render(request, "jobs/page.html", context, block="status")


@router.get("/{job_id}/finished")
def job_finished(session: SessionDep, user: Viewer, job_id: PositiveId) -> Response:
    """For a page that shows a job's results once it ends (an evaluation's, an A/B's): 204
    while the job runs, then htmx's HX-Refresh, so the page reloads itself with the results."""
    job = _load(session, job_id)
    if job.status.is_active:
        return Response(status_code=204)
    return Response(status_code=200, headers={"HX-Refresh": "true"})


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
