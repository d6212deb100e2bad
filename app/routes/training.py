from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author
from app.forms import SubmittedForm, parse_spec, spec_fields
from app.jobs import launch_job
from app.queue import JobQueue, get_job_queue
from app.session_dep import SessionDep
from app.specs.training import TrainingJobSpec
from app.templating import render
from app.training import launch_row_errors, preset_form, training_choices, with_output_name

router = APIRouter(prefix="/training")


def _form_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(TrainingJobSpec),
        "form": form,
        "errors": errors,
        **training_choices(session=session).options(),
    }
    return render(request, "training/launch.html", context, status_code=400 if errors else 200)


@router.get("")
def launch_form(
    request: Request,
    session: SessionDep,
    user: Author,
    model: str = "",
    dataset: str = "",
    method: str = "sft",
    preset: str = "cpu-smoke",
    output_name: str = "",
    base_model_id: str = "",
    dataset_id: str = "",
    soft_labels: str = "",
) -> Response:
    """The form, its numbers filled from the preset (changing method or preset refills them).

    Links pass `model` and `dataset`; the form's own refill sends its field names, and keeps
    the soft-labels box as it was (no preset sets it).
    """
    form = {
        **preset_form(preset, method),
        "base_model_id": model or base_model_id,
        "dataset_id": dataset or dataset_id,
        "method": method,
        "preset": preset,
        "output_name": output_name,
        "soft_labels": "true" if soft_labels.strip().lower() in ("true", "on", "1") else "",
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
    spec, errors = parse_spec(TrainingJobSpec, form)
    errors = {**errors, **launch_row_errors(session=session, form=form)}
    if spec is None or errors:
        return _form_page(request, session, form, errors)
    job = launch_job(
        session=session,
        queue=queue,
        kind="train",
        parameters=with_output_name(session=session, spec=spec).to_parameters(),
        user=user,
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
