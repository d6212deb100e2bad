from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, select

from app.auth import Reviewer, Viewer
from app.constitutions import (
    PrincipleFields,
    add_principle,
    draft_of,
    start_draft,
    validate_principle,
)
from app.ids import OptionalId, PositiveId, parse_id
from app.models import (
    Constitution,
    ConstitutionVersion,
    Job,
    LanguageModel,
    Principle,
    Prompt,
    Trace,
    User,
)
from app.recipe.diff import word_diff
from app.session_dep import SessionDep
from app.templating import render
from app.traces import (
    STATUSES,
    ReviewError,
    TraceFilter,
    list_traces,
    next_for_review,
    previous_trace,
    principle_keys,
    queue_left,
    reviews_of,
    steps_of,
    submit_review,
)
from app.users import usernames

router = APIRouter()


@router.get("/traces")
def traces(
    request: Request,
    session: SessionDep,
    user: Viewer,
    job: OptionalId = None,
    principle: str = "",
    status: str = "",
    q: str = "",
    after: OptionalId = None,
) -> Response:
    filters = TraceFilter(job_id=job, principle=principle, status=status, text=q[:200])
    page = list_traces(session=session, filters=filters, after=after)
    context = {
        "page": page,
        "filters": filters,
        "statuses": STATUSES,
        "principles": principle_keys(session=session, job_id=filters.job_id),
        "jobs": session.exec(select(Job).where(Job.kind == "generate")).all(),
        "query": {"job": str(job or ""), "principle": principle, "status": status, "q": q},
    }
    return render(request, "traces/list.html", context)


def load_trace(session: Session, trace_id: int) -> Trace:
    trace = session.get(Trace, trace_id)
    if trace is None:
        raise HTTPException(404, f"no trace {trace_id}")
    return trace


def trace_context(session: Session, trace: Trace, user: User, **extra: Any) -> dict[str, Any]:
    job = session.get(Job, trace.job_id)
    version = session.get(ConstitutionVersion, trace.constitution_version_id)
    constitution = session.get(Constitution, version.constitution_id) if version else None
    reviews = reviews_of(session=session, trace=trace)
    reviewer_ids = [r.reviewer_id for r in reviews]
    names = usernames(session=session, ids=reviewer_ids)
    prompt = session.get(Prompt, trace.prompt_id)
    return {
        "trace": trace,
        "prompt": prompt,
        "steps": steps_of(session=session, trace=trace),
        "reviews": reviews,
        "names": names,
        "job": job,
        "model": session.get(LanguageModel, trace.model_id),
        "version": version,
        "constitution": constitution,
        "change": word_diff(trace.initial_reply, trace.final_reply),
        "suggest_errors": {},
        "suggest_form": {},
        "review_error": "",
        "review_notice": "",
        "queue": None,
        "mine": next((r for r in reviews if r.reviewer_id == user.id), None),
        **extra,
    }


@router.get("/traces/{trace_id}")
def trace_page(
    request: Request, session: SessionDep, user: Viewer, trace_id: PositiveId
) -> Response:
    trace = load_trace(session, trace_id)
    return render(request, "traces/page.html", trace_context(session, trace, user))


def _queue_context(
    session: Session, user: User, job_id: int | None, trace: Trace
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "left": queue_left(session=session, reviewer=user, job_id=job_id),
        "previous": previous_trace(session=session, job_id=job_id, before=trace.id or 0),
    }


@router.get("/review")
def review_queue(
    request: Request,
    session: SessionDep,
    user: Reviewer,
    job: OptionalId = None,
    after: OptionalId = None,
    before: OptionalId = None,
) -> Response:
    """The next trace that still needs my review; `before` steps back to the one before."""
    job_id = job
    notice = request.query_params.get("notice", "")
    if before:
        trace = previous_trace(session=session, job_id=job_id, before=before)
    else:
        trace = next_for_review(session=session, reviewer=user, job_id=job_id, after=after or 0)
        if trace is None and after:
            # Skipped ones come round again once the end of the queue is reached.
            trace = next_for_review(session=session, reviewer=user, job_id=job_id)
    if trace is None:
        return render(request, "traces/queue_done.html", {"job_id": job_id, "notice": notice})
    context = trace_context(
        session,
        trace,
        user,
        queue=_queue_context(session, user, job_id, trace),
        review_notice=notice,
    )
    return render(request, "traces/page.html", context)


@router.post("/traces/{trace_id}/review")
def review(
    request: Request,
    session: SessionDep,
    user: Reviewer,
    trace_id: PositiveId,
    verdict: Annotated[str, Form()] = "",
    corrected_text: Annotated[str | None, Form()] = None,
    correcting: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    queue_job: Annotated[str, Form()] = "",
    in_queue: Annotated[str, Form()] = "",
) -> Response:
    trace = load_trace(session, trace_id)
    # The correction box and its flag are disabled, so not sent, unless the reviewer chose to
    # correct; the flag tells an empty correction (refused) from none (FastAPI sends both as None).
    if correcting:
        corrected_text = corrected_text or ""
    try:
        _, replaced = submit_review(
            session=session,
            trace=trace,
            reviewer=user,
            verdict=verdict,
            corrected_text=corrected_text if correcting else None,
            comment=comment,
        )
    except ReviewError as exc:
        session.rollback()
        queue = _queue_context(session, user, parse_id(queue_job), trace) if in_queue else None
        context = trace_context(
            session,
            trace,
            user,
            review_error=str(exc),
            queue=queue,
            draft_correction=corrected_text or "",
            draft_comment=comment,
        )
        return render(request, "traces/page.html", context, status_code=400)
    session.commit()
    notice = (
        "You had reviewed this trace already (perhaps in another tab): your review was updated."
        if replaced
        else ""
    )
    if in_queue:
        target = f"/review?job={parse_id(queue_job) or ''}&after={trace.id}"
        return RedirectResponse(target + (f"&notice={notice}" if notice else ""), status_code=303)
    return RedirectResponse(
        f"/traces/{trace.id}" + ("?updated=1" if replaced else ""), status_code=303
    )


@router.post("/traces/{trace_id}/suggest-principle")
def suggest_principle(
    request: Request,
    session: SessionDep,
    user: Reviewer,
    trace_id: PositiveId,
    key: Annotated[str, Form()] = "",
    critique_request: Annotated[str, Form()] = "",
    revision_request: Annotated[str, Form()] = "",
    comparison_instruction: Annotated[str, Form()] = "",
) -> Response:
    """Turns what a reviewer noticed into a principle in a draft of the run's constitution."""
    trace = load_trace(session, trace_id)
    version = session.get(ConstitutionVersion, trace.constitution_version_id)
    constitution = session.get(Constitution, version.constitution_id) if version else None
    if version is None or constitution is None:
        raise HTTPException(404, "the run's constitution version is gone")
    draft = draft_of(session=session, constitution=constitution) or start_draft(
        session=session, constitution=constitution, source=version, user=user
    )
    fields = PrincipleFields(
        key=key.strip(),
        critique_request=critique_request,
        revision_request=revision_request,
        comparison_instruction=comparison_instruction,
        tags="suggested",
    )
    errors = validate_principle(session=session, version=draft, fields=fields, principle_id=None)
    if errors:
        session.rollback()
        context = trace_context(
            session,
            trace,
            user,
            suggest_errors=errors,
            suggest_form=fields.__dict__,
        )
        return render(request, "traces/page.html", context, status_code=400)
    principle: Principle = add_principle(session=session, version=draft, fields=fields, user=user)
    principle.suggested_from_trace_id = trace.id
    session.add(principle)
    session.commit()
    return RedirectResponse(f"/versions/{draft.id}#principle-{principle.id}", status_code=303)
