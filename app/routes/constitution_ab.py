"""Constitution A/B in the browser: the form (two finished generation runs over the same
prompts, a judge, the judge's constitution version), the job it launches, and its results.

Registered before app.routes.evaluations, so /evaluations/ab is not read as a run id."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author, Viewer
from app.constitution_ab import (
    COMPARISON_KINDS,
    KIND,
    ab_comparisons,
    ab_errors,
    finished_runs,
    run_version_id,
)
from app.constitution_ab_view import KIND_REPLIES, KIND_TABLES, KIND_TITLES, ab_tables
from app.forms import SubmittedForm, parse_spec, spec_fields, spec_form_values
from app.generation import launch_choices
from app.ids import PositiveId
from app.jobs import launch_job
from app.models import ConstitutionVersion, Job
from app.queue import JobQueue, get_job_queue
from app.session_dep import SessionDep
from app.specs.base import SpecError
from app.specs.constitution_ab import ConstitutionABSpec
from app.templating import render

router = APIRouter(prefix="/evaluations/ab")


def _run_options(session: Session) -> list[tuple[int | None, str]]:
    options = []
    for job in finished_runs(session):
        version_id = run_version_id(job)
        version = session.get(ConstitutionVersion, version_id) if version_id else None
        under = f" under {version.label}" if version else ""
        options.append((job.id, f"run {job.id}{under} ({job.message or 'finished'})"))
    return options


def _form_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    runs = _run_options(session)
    context = {
        "fields": spec_fields(ConstitutionABSpec),
        "form": form,
        "errors": errors,
        "run_options": runs,
        **launch_choices(session=session).options(),
    }
    return render(request, "evaluations/ab_form.html", context, status_code=422 if errors else 200)


@router.get("")
def ab_form(request: Request, session: SessionDep, user: Author) -> Response:
    # The version page's "compare with the previous version" link fills in the runs.
    form = spec_form_values(ConstitutionABSpec)
    for name in ("run_a_id", "run_b_id", "constitution_version_id"):
        form[name] = request.query_params.get(name, form[name])
    return _form_page(request, session, form, {})


@router.post("")
def launch_ab(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    data: SubmittedForm,
) -> Response:
    form = dict(data)
    spec, errors = parse_spec(ConstitutionABSpec, form)
    if spec is not None:
        errors = ab_errors(session=session, spec=spec)
    if spec is None or errors:
        return _form_page(request, session, form, errors)
    job = launch_job(
        session=session, queue=queue, kind=KIND, parameters=spec.to_parameters(), user=user
    )
    return RedirectResponse(f"/evaluations/ab/{job.id}", status_code=303)


@router.get("/{job_id}")
def ab_results(request: Request, session: SessionDep, user: Viewer, job_id: PositiveId) -> Response:
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise HTTPException(404, f"no constitution A/B run {job_id}")
    try:
        spec: ConstitutionABSpec | None = ConstitutionABSpec.from_parameters(job.parameters)
    except SpecError:
        spec = None
    context: dict[str, Any] = {
        "job": job,
        "spec": spec,
        "result": job.result,
        "tables": ab_tables(job_id, job.result),
    }
    return render(request, "evaluations/ab_results.html", context)


@router.get("/{job_id}/comparisons")
def ab_comparison_list(
    request: Request,
    session: SessionDep,
    user: Viewer,
    job_id: PositiveId,
    kind: str = "ab",
    group: str = "all",
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise HTTPException(404, f"no constitution A/B run {job_id}")
    if kind not in COMPARISON_KINDS:
        raise HTTPException(422, f"kind: one of {', '.join(COMPARISON_KINDS)}, not {kind!r}")
    shown, next_after = ab_comparisons(session, job_id=job_id, kind=kind, group=group, after=after)
    context: dict[str, Any] = {
        "job": job,
        "kind": kind,
        "group": group,
        "title": KIND_TITLES[kind],
        "replies": KIND_REPLIES[kind],
        "table": KIND_TABLES[kind],
        "shown": shown,
        "after": next_after,
    }
    return render(request, "evaluations/ab_comparisons.html", context)
