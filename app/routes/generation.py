from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author
from app.db import SessionDep
from app.forms import SubmittedForm, parse_spec, spec_fields, spec_form_values
from app.generation import launch_choices, launch_row_errors
from app.jobs import launch_job
from app.queue import JobQueue, get_job_queue
from app.specs.generation import GenerationSpec
from app.templating import render

router = APIRouter(prefix="/generate")


def _form_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(GenerationSpec),
        "form": form,
        "errors": errors,
        **launch_choices(session=session).options(),
    }
    return render(request, "generation/launch.html", context, status_code=400 if errors else 200)


@router.get("")
def launch_form(
    request: Request,
    session: SessionDep,
    user: Author,
    version: str = "",
    prompt_set: str = "",
    model: str = "",
) -> Response:
    form = {
        **spec_form_values(GenerationSpec),
        "constitution_version_id": version,
        "prompt_set_id": prompt_set,
        "model_id": model,
    }
    return _form_page(request, session, form, {})


@router.post("")
def launch(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    form: SubmittedForm,
) -> Response:
    spec, errors = parse_spec(GenerationSpec, form)
    errors = {**errors, **launch_row_errors(session=session, form=form)}
    if spec is None or errors:
        return _form_page(request, session, form, errors)
    job = launch_job(
        session=session,
        queue=queue,
        kind="generate",
        parameters=spec.to_parameters(),
        user=user,
        reviews_needed=spec.reviews_needed,
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
