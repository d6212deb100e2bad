from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author
from app.estimates import RunShape, estimate_run
from app.forms import (
    SubmittedForm,
    parse_numbers,
    parse_spec,
    spec_fields,
    spec_form_values,
    spec_number_fields,
)
from app.generation import (
    launch_choices,
    launch_row_errors,
    model_sampling,
    sampling_context,
    sampling_text,
)
from app.ids import parse_id
from app.jobs import launch_job
from app.queue import JobQueue, get_job_queue
from app.session_dep import SessionDep
from app.specs.base import StageSpec
from app.specs.feedback import ReplyPairSpec
from app.specs.generation import GenerationSpec
from app.templating import render

router = APIRouter(prefix="/generate")

_STAGE_SPECS: dict[str, type[StageSpec]] = {"generate": GenerationSpec, "pairs": ReplyPairSpec}


def estimate_context(session: Session, form: dict[str, str]) -> dict[str, object]:
    """The estimate fragment's context from the form's fields; a field not filled in yet (or
    out of range) leaves the estimate waiting for it."""
    prompt_set_id, model_id = parse_id(form.get("prompt_set_id")), parse_id(form.get("model_id"))
    if prompt_set_id is None or model_id is None:
        return {"estimate": None, "estimate_wants": "Choose a prompt set and a model"}
    errors: dict[str, str] = {}
    numbers = parse_numbers(
        {name: form.get(name) or default for name, default in _SHAPE_DEFAULTS.items()},
        _SHAPE_NUMBERS,
        errors,
    )
    if errors:
        return {"estimate": None, "estimate_wants": "Fix " + ", ".join(sorted(errors))}
    shape = RunShape(
        prompt_set_id=prompt_set_id,
        model_id=model_id,
        constitution_version_id=parse_id(form.get("constitution_version_id")),
        **{name: int(value) for name, value in numbers.items()},
    )
    estimate = estimate_run(session=session, shape=shape)
    wants = "" if estimate else "Choose a prompt set with prompts and a model"
    return {"estimate": estimate, "estimate_wants": wants}


# The run's size from the form, with the spec's own bounds and defaults.
_SHAPE_NUMBERS = spec_number_fields(
    GenerationSpec, ("rounds", "max_new_tokens", "sample_size", "max_prompts")
)
_SHAPE_DEFAULTS = {name: spec_form_values(GenerationSpec)[name] for name in _SHAPE_NUMBERS}


def _form_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "fields": spec_fields(GenerationSpec),
        "form": form,
        "errors": errors,
        **sampling_context("generate", model_sampling(session, form.get("model_id", ""))),
        **estimate_context(session, form),
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
    sampling = model_sampling(session, model)
    form = {
        **spec_form_values(GenerationSpec),
        **sampling_text(sampling),
        "constitution_version_id": version,
        "prompt_set_id": prompt_set,
        "model_id": model,
    }
    return _form_page(request, session, form, {})


@router.get("/sampling")
def sampling_fields(
    request: Request,
    session: SessionDep,
    user: Author,
    stage: Literal["generate", "pairs"] = "generate",
    model_id: str = "",
    preset: Literal["model", "paper"] = "model",
) -> Response:
    """The launch forms' sampling fields, filled in with the chosen model's defaults or a
    preset (htmx swaps them in when the model changes)."""
    sampling = model_sampling(session, model_id, preset)
    context = {
        **sampling_context(stage, sampling),
        "fields": spec_fields(_STAGE_SPECS[stage]),
        "form": sampling_text(sampling),
        "errors": {},
    }
    return render(request, "generation/_sampling.html", context)


@router.get("/estimate")
def run_estimate(
    request: Request,
    session: SessionDep,
    user: Author,
    constitution_version_id: str = "",
    prompt_set_id: str = "",
    model_id: str = "",
    rounds: str = "",
    max_new_tokens: str = "",
    sample_size: str = "",
    max_prompts: str = "",
) -> Response:
    """The expected tokens and time of the run the form describes (htmx, as fields change)."""
    form = {
        "constitution_version_id": constitution_version_id,
        "prompt_set_id": prompt_set_id,
        "model_id": model_id,
        "rounds": rounds,
        "max_new_tokens": max_new_tokens,
        "sample_size": sample_size,
        "max_prompts": max_prompts,
    }
    return render(request, "generation/_estimate.html", estimate_context(session, form))


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
