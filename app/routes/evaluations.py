"""Evaluation runs: the launch form, the results page, and the judgements and replies behind
every number."""

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author, Viewer
from app.eval_labels import judgement_labels_of, reply_labels_of, run_agreement
from app.evaluation_charts import charts as result_charts
from app.evaluation_goodhart import goodhart_table
from app.evaluation_prefill import prefill_models
from app.evaluation_view import agreement_rows, boards, rate_tables, summary
from app.evaluations import (
    KIND,
    evaluation_errors,
    evaluation_runs,
    form_suites,
    judgement_rows,
    model_names,
    parameters_ok,
    reply_rows,
)
from app.forms import SubmittedForm, parse_spec, spec_fields, spec_form_values
from app.generation import launch_choices
from app.ids import IdOrZero, OptionalId, PositiveId, parse_id
from app.jobs import launch_job
from app.judge_checks import judge_notes
from app.models import Job, PromptSet
from app.queue import JobQueue, get_job_queue
from app.recipe.evaluation import SuitePurpose
from app.session_dep import SessionDep
from app.specs.evaluation import EvaluationSpec
from app.templating import render

router = APIRouter(prefix="/evaluations")

SAMPLING = ("temperature", "top_p", "top_k", "repetition_penalty")
SHOWN = {"": "", "refusing": "refusing", "evasive": "evasive"}


def _form_page(
    request: Request,
    session: Session,
    form: dict[str, str],
    errors: dict[str, str],
    notes: Sequence[str] = (),
) -> Response:
    choices = launch_choices(session=session)
    chosen = {
        name: {parse_id(line) for line in form.get(name, "").splitlines()} - {None}
        for name in ("model_ids", "suite_ids")
    }
    context = {
        "fields": spec_fields(EvaluationSpec),
        "form": form,
        "errors": errors,
        "models": choices.models,
        "suites": form_suites(session),
        "chosen": chosen,
        "sampling": SAMPLING,
        "prefill_notes": notes,
        **choices.options(),
    }
    # A refused launch is a 422 naming each field, as a bad field of any other request is.
    return render(request, "evaluations/launch.html", context, status_code=422 if errors else 200)


@router.get("")
def runs(request: Request, session: SessionDep, user: Viewer) -> Response:
    return render(request, "evaluations/list.html", {"runs": evaluation_runs(session=session)})


@router.get("/new")
def launch_form(
    request: Request,
    session: SessionDep,
    user: Author,
    model: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The form; links ("Evaluate it") tick models by `model`, a value naming no policy model
    is left out with a note."""
    prefill = prefill_models(session=session, raw=model or [])
    form = {**spec_form_values(EvaluationSpec), "model_ids": "\n".join(map(str, prefill.model_ids))}
    return _form_page(request, session, form, {}, prefill.notes)


@router.post("/new")
def launch(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    data: SubmittedForm,
    model_ids: Annotated[list[str] | None, Form()] = None,
    suite_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    # The ticked boxes as one id per line: the spec's "ids" form of a tuple.
    form = {
        **data,
        "model_ids": "\n".join(model_ids or []),
        "suite_ids": "\n".join(suite_ids or []),
    }
    spec, errors = parse_spec(EvaluationSpec, form)
    if spec is not None:
        errors = evaluation_errors(session=session, spec=spec)
    if spec is None or errors:
        return _form_page(request, session, form, errors)
    job = launch_job(
        session=session, queue=queue, kind=KIND, parameters=spec.to_parameters(), user=user
    )
    return RedirectResponse(f"/evaluations/{job.id}", status_code=303)


def _run(session: Session, job_id: int) -> tuple[Job, EvaluationSpec | None]:
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise HTTPException(404, f"no evaluation run {job_id}")
    return job, parameters_ok(job.parameters)


def _names(session: Session, spec: EvaluationSpec | None) -> dict[str, Any]:
    if spec is None:
        return {"model_names": {}, "suite_names": {}, "judge": None}
    suites = {i: session.get(PromptSet, i) for i in spec.suite_ids}
    return {
        "model_names": model_names(session, spec.model_ids),
        "suite_names": {i: s.name if s else f"set {i}" for i, s in suites.items()},
        "judge": model_names(session, [spec.judge_model_id])[spec.judge_model_id],
    }


def _suites_of(session: Session, spec: EvaluationSpec | None, purpose: str) -> list[int]:
    """The run's suites of one purpose."""
    suites = [session.get(PromptSet, i) for i in (spec.suite_ids if spec else ())]
    return [s.id or 0 for s in suites if s is not None and s.purpose == purpose]


@router.get("/{run_id}")
def results(request: Request, session: SessionDep, user: Viewer, run_id: PositiveId) -> Response:
    job, spec = _run(session, run_id)
    result = job.result if job.result.get("ratings") is not None else {}
    names = _names(session, spec)
    context = {
        "job": job,
        "spec": spec,
        "boards": boards(run_id, result),
        "rates": rate_tables(run_id, result),
        "summary": summary(run_id, result),
        "goodhart": goodhart_table(session=session, job_id=run_id, result=result),
        "charts": result_charts(result),
        "result": result,
        "judge_notes": judge_notes(session, spec) if spec else [],
        **names,
        "agreement": agreement_rows(
            run_id,
            names["suite_names"],
            run_agreement(session=session, job_id=run_id, suite_ids=list(names["suite_names"])),
        )
        if result
        else [],
    }
    return render(request, "evaluations/results.html", context)


@router.get("/{run_id}/judgements")
def judgements(
    request: Request,
    session: SessionDep,
    user: Viewer,
    run_id: PositiveId,
    model: OptionalId = None,
    suite: OptionalId = None,
    axis: str = "",
    against: OptionalId = None,
    after: IdOrZero = 0,
) -> Response:
    job, spec = _run(session, run_id)
    if axis not in ("", "harmless", "helpful"):
        raise HTTPException(422, "axis: harmless, helpful or none")
    rows = judgement_rows(
        session=session,
        job_id=run_id,
        model_id=model,
        suite_id=suite,
        axis=axis,
        against=against,
        after=after,
    )
    context = {
        "job": job,
        "rows": rows,
        "filters": {"model": model, "suite": suite, "axis": axis, "against": against},
        "people": judgement_labels_of(session=session, judgement_ids=[j.id or 0 for j, *_ in rows]),
        "after": rows[-1][0].id if len(rows) == 50 else None,
        **_names(session, spec),
    }
    return render(request, "evaluations/judgements.html", context)


@router.get("/{run_id}/replies")
def replies(
    request: Request,
    session: SessionDep,
    user: Viewer,
    run_id: PositiveId,
    model: OptionalId = None,
    suite: OptionalId = None,
    shown: str = "",
    purpose: str = "",
    after: IdOrZero = 0,
) -> Response:
    job, spec = _run(session, run_id)
    if shown not in SHOWN:
        raise HTTPException(422, "shown: refusing, evasive or none")
    if purpose and purpose not in {p.value for p in SuitePurpose}:
        raise HTTPException(422, "purpose: a suite purpose or none")
    rows = reply_rows(
        session=session,
        job_id=run_id,
        model_id=model,
        suite_id=suite,
        suite_ids=_suites_of(session, spec, purpose) if purpose else None,
        refusal_class="refusing" if shown == "refusing" else None,
        evasive=shown == "evasive",
        after=after,
    )
    context = {
        "job": job,
        "rows": rows,
        "filters": {"model": model, "suite": suite, "shown": shown, "purpose": purpose},
        "people": reply_labels_of(session=session, reply_ids=[r.id or 0 for r, *_ in rows]),
        "after": rows[-1][0].id if len(rows) == 50 else None,
        **_names(session, spec),
    }
    return render(request, "evaluations/replies.html", context)
