from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author
from app.forms import SubmittedForm, parse_spec, spec_fields
from app.jobs import launch_job
from app.queue import JobQueue, get_job_queue
from app.rl import WEIGHT_PREFIX, preset_form, rl_choices, rl_row_errors, with_prompt_mix
from app.session_dep import SessionDep
from app.specs.rl import RLJobSpec
from app.templating import render

router = APIRouter(prefix="/rl")


def _form_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(RLJobSpec),
        "form": form,
        "errors": errors,
        "weight_prefix": WEIGHT_PREFIX,
        **rl_choices(session=session).options(),
    }
    # 422: the form was understood, its values were not acceptable; each error names its field.
    return render(request, "rl/launch.html", context, status_code=422 if errors else 200)


@router.get("")
def launch_form(
    request: Request,
    session: SessionDep,
    user: Author,
    model: str = "",
    reward: str = "",
    preset: str = "cpu-smoke",
) -> Response:
    """The form, its numbers filled from the preset; links pass `model` and `reward`, and the
    form's own refill (a new preset) sends its fields, of which the choices are kept."""
    query = request.query_params
    kept = {
        name: value
        for name, value in query.items()
        if name.startswith(WEIGHT_PREFIX) or name in ("output_name",)
    }
    form = {
        **preset_form(preset),
        **kept,
        "policy_model_id": model or query.get("policy_model_id", ""),
        "reward_model_id": reward or query.get("reward_model_id", ""),
        "preset": preset,
    }
    form.setdefault("output_name", "")
    return _form_page(request, session, form, {})


@router.post("")
def launch(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    form: SubmittedForm,
) -> Response:
    form = with_prompt_mix(form)
    spec, errors = parse_spec(RLJobSpec, form)
    errors = {**errors, **rl_row_errors(session=session, form=form)}
    if spec is None or errors:
        return _form_page(request, session, form, errors)
    job = launch_job(
        session=session, queue=queue, kind="rl", parameters=spec.to_parameters(), user=user
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
