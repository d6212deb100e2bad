"""People label an evaluation's judgements and classed replies from the keyboard, one at a
time (static/label.js, the keys of the feedback review page): the judge's view is folded away
until asked for."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Reviewer
from app.eval_labels import (
    CHOICES,
    CLASSES,
    next_judgement,
    next_reply,
    record_judgement_label,
    record_reply_label,
)
from app.evaluations import KIND, model_names, parameters_ok
from app.ids import IdOrZero, OptionalId, PositiveId, parse_id
from app.models import EvalJudgement, EvalRefusal, Job, PromptSet
from app.session_dep import SessionDep
from app.templating import render

router = APIRouter(prefix="/evaluations")


def _run(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise HTTPException(404, f"no evaluation run {job_id}")
    return job


def _context(session: Session, job: Job, suite: int | None, after: int) -> dict[str, Any]:
    spec = parameters_ok(job.parameters)
    suite_row = session.get(PromptSet, suite) if suite else None
    return {
        "job": job,
        "suite": suite,
        "suite_name": suite_row.name if suite_row else None,
        "after": after,
        "model_names": model_names(session, spec.model_ids) if spec else {},
    }


def _back(job_id: int, page: str, saved: str, suite: str, after: str) -> RedirectResponse:
    query = [f"saved={saved}"]
    suite_id, after_id = parse_id(suite), parse_id(after)
    if suite_id:
        query.append(f"suite={suite_id}")
    if after_id:
        query.append(f"after={after_id}")
    return RedirectResponse(
        f"/evaluations/{job_id}/{page}/label?{'&'.join(query)}", status_code=303
    )


@router.get("/{run_id}/judgements/label")
def label_judgements(
    request: Request,
    session: SessionDep,
    user: Reviewer,
    run_id: PositiveId,
    suite: OptionalId = None,
    after: IdOrZero = 0,
) -> Response:
    """The next comparison of the run I have not labelled: A and B side by side."""
    job = _run(session, run_id)
    context = {
        **_context(session, job, suite, after),
        "item": next_judgement(
            session=session, job_id=run_id, user=user, suite_id=suite, after=after
        ),
        "choices": CHOICES,
        "notice": CHOICES.get(request.query_params.get("saved", "").removesuffix("-replaced")),
        "replaced": request.query_params.get("saved", "").endswith("-replaced"),
    }
    return render(request, "evaluations/label_judgement.html", context)


@router.post("/{run_id}/judgements/{judgement_id}/label")
def label_judgement(
    session: SessionDep,
    user: Reviewer,
    run_id: PositiveId,
    judgement_id: PositiveId,
    choice: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "",
    after: Annotated[str, Form()] = "",
) -> Response:
    _run(session, run_id)
    judgement = session.get(EvalJudgement, judgement_id)
    if judgement is None or judgement.job_id != run_id:
        raise HTTPException(404, f"no comparison {judgement_id} in evaluation {run_id}")
    try:
        replaced = record_judgement_label(
            session=session, judgement=judgement, user=user, choice=choice
        )
    except ValueError as exc:
        raise HTTPException(422, f"choice: {exc}") from exc
    session.commit()
    saved = f"{choice}{'-replaced' if replaced else ''}"
    return _back(run_id, "judgements", saved, suite, after)


@router.get("/{run_id}/replies/label")
def label_replies(
    request: Request,
    session: SessionDep,
    user: Reviewer,
    run_id: PositiveId,
    suite: OptionalId = None,
    after: IdOrZero = 0,
) -> Response:
    """The next classed reply of the run I have not labelled."""
    job = _run(session, run_id)
    saved = request.query_params.get("saved", "")
    context = {
        **_context(session, job, suite, after),
        "item": next_reply(session=session, job_id=run_id, user=user, suite_id=suite, after=after),
        "classes": CLASSES,
        "notice": CLASSES.get(saved.removesuffix("-replaced").removesuffix("-evasive")),
        "evasive_saved": "-evasive" in saved,
        "replaced": saved.endswith("-replaced"),
    }
    return render(request, "evaluations/label_reply.html", context)


@router.post("/{run_id}/replies/{reply_id}/label")
def label_reply(
    session: SessionDep,
    user: Reviewer,
    run_id: PositiveId,
    reply_id: PositiveId,
    refusal_class: Annotated[str, Form()] = "",
    evasive: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "",
    after: Annotated[str, Form()] = "",
) -> Response:
    _run(session, run_id)
    reply = session.get(EvalRefusal, reply_id)
    if reply is None or reply.job_id != run_id:
        raise HTTPException(404, f"no reply {reply_id} in evaluation {run_id}")
    if evasive not in ("", "yes"):
        raise HTTPException(422, f"evasive: 'yes' or nothing, not '{evasive}'")
    is_evasive = evasive == "yes" and refusal_class != "complies"
    try:
        replaced = record_reply_label(
            session=session,
            reply=reply,
            user=user,
            refusal_class=refusal_class,
            evasive=is_evasive,
        )
    except ValueError as exc:
        raise HTTPException(422, f"refusal_class: {exc}") from exc
    session.commit()
    saved = f"{refusal_class}{'-evasive' if is_evasive else ''}{'-replaced' if replaced else ''}"
    return _back(run_id, "replies", saved, suite, after)
