from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import Author, Reviewer, Viewer
from app.datasets.feedback_rows import build_feedback_rows
from app.feedback import (
    QUEUE_ORDERS,
    QueueOrder,
    comparison_records,
    comparison_rows,
    eval_row_errors,
    human_labels_of,
    label_row_errors,
    label_runs,
    next_to_label,
    pair_row_errors,
    pair_runs,
    record_human_label,
    run_agreement,
)
from app.forms import (
    SubmittedForm,
    parse_spec,
    spec_fields,
    spec_form_values,
)
from app.generation import launch_choices, model_sampling, sampling_context, sampling_text
from app.ids import IdOrZero, PositiveId, parse_id
from app.jobs import launch_job
from app.models import Comparison, Dataset, Job, JobStatus, LanguageModel
from app.queue import JobQueue, get_job_queue
from app.session_dep import SessionDep
from app.specs import SpecError
from app.specs.feedback import ReplyPairSpec
from app.specs.labelling import EVAL_SETTINGS, LabellerEvalRequest, LabellerEvalSpec, LabelSpec
from app.templating import render
from app.upload_store import remove_upload, upload_byte_limit
from app.uploads import save_upload, upload_error
from app.web_datasets import create_dataset, parse_feedback_options

router = APIRouter()


@router.get("/feedback")
def overview(request: Request, session: SessionDep, user: Viewer) -> Response:
    context = {
        "pair_runs": pair_runs(session=session),
        "label_runs": label_runs(session=session),
        "evals": session.exec(
            select(Job).where(Job.kind == "eval_labeller").order_by(col(Job.id).desc()).limit(20)
        ).all(),
    }
    return render(request, "feedback/index.html", context)


def _pairs_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(ReplyPairSpec),
        "form": form,
        "errors": errors,
        **sampling_context("pairs", model_sampling(session, form.get("model_id", ""))),
        **launch_choices(session=session).options(),
    }
    return render(request, "feedback/pairs.html", context, status_code=400 if errors else 200)


@router.get("/feedback/pairs")
def pairs_form(request: Request, session: SessionDep, user: Author, model: str = "") -> Response:
    form = {
        **spec_form_values(ReplyPairSpec),
        **sampling_text(model_sampling(session, model)),
        "model_id": model,
    }
    return _pairs_page(request, session, form, {})


@router.post("/feedback/pairs")
def launch_pairs(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    data: SubmittedForm,
) -> Response:
    spec, errors = parse_spec(ReplyPairSpec, data)
    errors = {**errors, **pair_row_errors(session=session, form=data)}
    if spec is None or errors:
        return _pairs_page(request, session, data, errors)
    job = launch_job(
        session=session,
        queue=queue,
        kind="reply_pairs",
        parameters=spec.to_parameters(),
        user=user,
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def _label_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(LabelSpec),
        "form": form,
        "errors": errors,
        "pair_run_options": [
            (job.id, f"Run {job.id}: {n} pairs") for job, n in pair_runs(session=session)
        ],
        **launch_choices(session=session).options(),
    }
    return render(request, "feedback/label.html", context, status_code=400 if errors else 200)


@router.get("/feedback/label")
def label_form(request: Request, session: SessionDep, user: Author, pairs: str = "") -> Response:
    return _label_page(request, session, {**spec_form_values(LabelSpec), "pair_job_id": pairs}, {})


@router.post("/feedback/label")
def launch_labelling(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    data: SubmittedForm,
) -> Response:
    spec, errors = parse_spec(LabelSpec, data)
    errors = {**errors, **label_row_errors(session=session, form=data)}
    if spec is None or errors:
        return _label_page(request, session, data, errors)
    job = launch_job(
        session=session,
        queue=queue,
        kind="label_pairs",
        parameters=spec.to_parameters(),
        user=user,
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def _label_run(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != "label_pairs":
        raise HTTPException(404, f"no labelling run {job_id}")
    return job


def stored_label_spec(job: Job) -> LabelSpec | None:
    """The run's options; None for a row they do not read from (stored by hand, or by an older
    version), whose page still shows its comparisons."""
    try:
        return LabelSpec.from_parameters(job.parameters)
    except SpecError:
        return None


def _run_context(session: Session, job: Job, after: int) -> dict[str, Any]:
    rows = comparison_rows(session=session, job_id=job.id or 0, after=after)
    humans = human_labels_of(session=session, comparison_ids=[c.id or 0 for c, _, _ in rows])
    spec = stored_label_spec(job)
    pair_job = session.get(Job, spec.pair_job_id) if spec else None
    model = session.get(LanguageModel, spec.model_id) if spec else None
    return {
        "job": job,
        "pair_job": pair_job,
        "model": model,
        "rows": rows,
        "humans": humans,
        "after": rows[-1][0].id if len(rows) == 50 else None,
        "agreement": run_agreement(session=session, job_id=job.id or 0),
        "datasets": session.exec(
            select(Dataset).where(Dataset.kind == "ai-feedback").order_by(col(Dataset.id).desc())
        ).all(),
    }


@router.get("/feedback/runs/{run_id}")
def label_run_page(
    request: Request, session: SessionDep, user: Viewer, run_id: PositiveId, after: IdOrZero = 0
) -> Response:
    job = _label_run(session, run_id)
    context = {
        **_run_context(session, job, after),
        "form": {"min_margin": "0", "test_fraction": "10", "seed": "0", "prefer_human": "1"},
        "errors": {},
    }
    return render(request, "feedback/run.html", context)


@router.post("/feedback/runs/{run_id}/dataset")
def build_feedback_dataset(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    run_id: PositiveId,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    min_margin: Annotated[str, Form()] = "0",
    test_fraction: Annotated[str, Form()] = "10",
    seed: Annotated[str, Form()] = "0",
    prefer_human: Annotated[str, Form()] = "",
) -> Response:
    job = _label_run(session, run_id)
    form = {
        "name": name.strip(),
        "description": description.strip()[:2000],
        "min_margin": min_margin,
        "test_fraction": test_fraction,
        "seed": seed,
        "prefer_human": prefer_human,
    }
    options, errors = parse_feedback_options(form)
    if not form["name"]:
        errors["name"] = "Give the dataset a name."
    if options is not None and not errors:
        built = build_feedback_rows(comparison_records(session=session, job_id=run_id), options)
        if not built.total_rows:
            reasons = ", ".join(f"{n} {reason}" for reason, n in built.dropped.items())
            errors["min_margin"] = (
                f"No rows are left after filtering ({reasons or 'no comparisons yet'})."
            )
    if errors or options is None:
        context = {**_run_context(session, job, 0), "form": form, "errors": errors}
        return render(request, "feedback/run.html", context, status_code=400)
    dataset, _ = create_dataset(
        session=session,
        queue=queue,
        name=form["name"],
        description=form["description"],
        job_ids=[run_id],
        options=options,
        helpful_path=None,
        helpful_filename="",
        user=user,
        kind="ai-feedback",
    )
    return RedirectResponse(f"/datasets/{dataset.id}", status_code=303)


@router.get("/feedback/runs/{run_id}/review")
def review_page(
    request: Request,
    session: SessionDep,
    user: Reviewer,
    run_id: PositiveId,
    after: IdOrZero = 0,
    order: QueueOrder = "id",
) -> Response:
    """The next comparison I have not labelled: A and B side by side, the AI's view beside.
    `order=uncertain` serves the ones the feedback model was least sure of first,
    `order=disagreement` those its principles disagreed on most."""
    job = _label_run(session, run_id)
    found = next_to_label(session=session, job_id=run_id, user=user, after=after, order=order)
    context: dict[str, Any] = {
        "job": job,
        "item": found,
        "after": after,
        "order": order,
        "orders": QUEUE_ORDERS,
        "notice": request.query_params.get("saved"),
    }
    if found:
        comparison = found[0]
        context["mine"] = human_labels_of(session=session, comparison_ids=[comparison.id or 0])
    return render(request, "feedback/review.html", context)


@router.post("/comparisons/{comparison_id}/label")
def label_comparison(
    request: Request,
    session: SessionDep,
    user: Reviewer,
    comparison_id: PositiveId,
    choice: Annotated[str, Form()] = "",
    after: Annotated[str, Form()] = "",
    order: Annotated[str, Form()] = "id",
) -> Response:
    if order not in QUEUE_ORDERS:
        raise HTTPException(422, f"order: choose {' or '.join(QUEUE_ORDERS)}, not '{order}'")
    comparison = session.get(Comparison, comparison_id)
    if comparison is None:
        raise HTTPException(404, f"no comparison {comparison_id}")
    try:
        _, replaced = record_human_label(
            session=session, comparison=comparison, user=user, choice=choice
        )
    except ValueError as exc:
        raise HTTPException(422, f"choice: {exc}") from exc
    session.commit()
    saved = f"{choice}{'-replaced' if replaced else ''}"
    after_id = parse_id(after)
    skipped = f"&after={after_id}" if after_id else ""
    ordered = f"&order={order}" if order != "id" else ""
    return RedirectResponse(
        f"/feedback/runs/{comparison.job_id}/review?saved={saved}{skipped}{ordered}",
        status_code=303,
    )


def _eval_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(LabellerEvalRequest),
        "model_options": [
            (m.id, m.name)
            for m in session.exec(
                select(LanguageModel)
                .where(LanguageModel.kind == "policy")
                .order_by(col(LanguageModel.name))
            )
        ],
        "settings": EVAL_SETTINGS,
        "form": form,
        "errors": errors,
    }
    return render(request, "feedback/eval.html", context, status_code=400 if errors else 200)


@router.get("/feedback/eval")
def eval_form(request: Request, session: SessionDep, user: Author) -> Response:
    return _eval_page(request, session, spec_form_values(LabellerEvalRequest), {})


@router.post("/feedback/eval")
def launch_eval(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    file: Annotated[UploadFile | None, File()] = None,
    model_id: Annotated[str, Form()] = "",
    limit: Annotated[str, Form()] = "0",
    settings: Annotated[list[str] | None, Form()] = None,
    cot_max_new_tokens: Annotated[str, Form()] = "128",
) -> Response:
    from app.recipe.hhh_file import HHHFileError, check_hhh_file

    # The ticked settings as one value per line: the spec's "lines" form of a tuple.
    form = {
        "model_id": model_id,
        "limit": limit,
        "settings": "\n".join(settings or []),
        "cot_max_new_tokens": cot_max_new_tokens,
    }
    request_spec, errors = parse_spec(LabellerEvalRequest, form)
    errors = {**errors, **eval_row_errors(session=session, form=form)}
    file_error = upload_error(file, required=True)
    if file_error:
        errors["file"] = file_error
    if errors or file is None or request_spec is None:
        return _eval_page(request, session, form, errors)
    path = save_upload(file)
    try:
        # The error names the user's file and line, not the server's copy.
        count = check_hhh_file(path, name=file.filename, max_bytes=upload_byte_limit())
        job = launch_job(
            session=session,
            queue=queue,
            kind="eval_labeller",
            parameters=LabellerEvalSpec(
                **request_spec.model_dump(),
                path=str(path),
                filename=file.filename or "",
                questions=count,
            ).to_parameters(),
            user=user,
        )
    except HHHFileError as exc:
        remove_upload(path)
        return _eval_page(request, session, form, {"file": str(exc)})
    except BaseException:
        remove_upload(path)
        raise
    if job.status == JobStatus.FAILED:  # never queued, so no job will read or remove the file
        remove_upload(path)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
