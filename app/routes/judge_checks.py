"""Judge checks: upload a people-labelled completions file (XSTest's format) and check the
refusal judge against it (worker.judge_check_job); the result shows on the job's page."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import Author
from app.forms import parse_spec, spec_fields, spec_form_values
from app.jobs import launch_job
from app.judge_checks import KIND, check_errors
from app.models import Job, JobStatus, LanguageModel
from app.prompt_files.xstest import XSTestFileError, load_labelled_completions
from app.queue import JobQueue, get_job_queue
from app.session_dep import SessionDep
from app.specs.judge_check import JudgeCheckRequest, JudgeCheckSpec
from app.templating import render
from app.upload_store import remove_upload, upload_byte_limit
from app.uploads import save_upload, upload_error

router = APIRouter(prefix="/judge-checks")


def _page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(JudgeCheckRequest),
        "model_options": [
            (m.id, m.name)
            for m in session.exec(
                select(LanguageModel)
                .where(LanguageModel.kind == "policy")
                .order_by(col(LanguageModel.name))
            )
        ],
        "form": form,
        "errors": errors,
        "checks": session.exec(
            select(Job).where(Job.kind == KIND).order_by(col(Job.id).desc()).limit(20)
        ).all(),
    }
    return render(request, "judge_checks/new.html", context, status_code=400 if errors else 200)


@router.get("/new")
def check_form(request: Request, session: SessionDep, user: Author) -> Response:
    return _page(request, session, spec_form_values(JudgeCheckRequest), {})


@router.post("/new")
def launch_check(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    file: Annotated[UploadFile | None, File()] = None,
    model_id: Annotated[str, Form()] = "",
    limit: Annotated[str, Form()] = "0",
    batch_size: Annotated[str, Form()] = "8",
) -> Response:
    form = {"model_id": model_id, "limit": limit, "batch_size": batch_size}
    request_spec, errors = parse_spec(JudgeCheckRequest, form)
    errors = {**errors, **check_errors(session=session, form=form)}
    file_error = upload_error(file, required=True)
    if file_error:
        errors["file"] = file_error
    if errors or file is None or request_spec is None:
        return _page(request, session, form, errors)
    path = save_upload(file)
    try:
        # Read whole here so that a bad file is refused now, naming the user's file and line.
        count = len(
            load_labelled_completions(path, name=file.filename, max_bytes=upload_byte_limit())
        )
        job = launch_job(
            session=session,
            queue=queue,
            kind=KIND,
            parameters=JudgeCheckSpec(
                **request_spec.model_dump(),
                path=str(path),
                filename=file.filename or "",
                rows=count,
            ).to_parameters(),
            user=user,
        )
    except XSTestFileError as exc:
        remove_upload(path)
        return _page(request, session, form, {"file": str(exc)})
    except BaseException:
        remove_upload(path)
        raise
    if job.status == JobStatus.FAILED:  # never queued, so no job will read or remove the file
        remove_upload(path)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
