from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author
from app.db import SessionDep
from app.generation import launch_choices, validate_launch
from app.ids import parse_id
from app.jobs import launch_job
from app.queue import JobQueue, get_job_queue
from app.templating import render

router = APIRouter(prefix="/generate")

DEFAULTS = {
    "rounds": "1",
    "max_prompts": "0",
    "sample_size": "0",
    "seed": "0",
    "max_new_tokens": "256",
    "temperature": "1.0",
    "top_p": "1.0",
    "chunk_size": "16",
    "reviews_needed": "1",
    "stop": "",
}


def _form_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {"choices": launch_choices(session=session), "form": form, "errors": errors}
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
        **DEFAULTS,
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
    constitution_version_id: Annotated[str, Form()] = "",
    prompt_set_id: Annotated[str, Form()] = "",
    model_id: Annotated[str, Form()] = "",
    rounds: Annotated[str, Form()] = "1",
    max_prompts: Annotated[str, Form()] = "0",
    sample_size: Annotated[str, Form()] = "0",
    seed: Annotated[str, Form()] = "0",
    max_new_tokens: Annotated[str, Form()] = "256",
    temperature: Annotated[str, Form()] = "1.0",
    top_p: Annotated[str, Form()] = "1.0",
    chunk_size: Annotated[str, Form()] = "16",
    reviews_needed: Annotated[str, Form()] = "1",
    stop: Annotated[str, Form()] = "",
) -> Response:
    form = {
        # The stage reads these with int(): only an id passes, anything else is "none chosen".
        "constitution_version_id": str(parse_id(constitution_version_id) or ""),
        "prompt_set_id": str(parse_id(prompt_set_id) or ""),
        "model_id": str(parse_id(model_id) or ""),
        "rounds": rounds,
        "max_prompts": max_prompts,
        "sample_size": sample_size,
        "seed": seed,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "chunk_size": chunk_size,
        "reviews_needed": reviews_needed,
        "stop": stop,
    }
    params, errors = validate_launch(session=session, form=form)
    if errors:
        return _form_page(request, session, form, errors)
    job = launch_job(
        session=session,
        queue=queue,
        kind="generate",
        parameters=params,
        user=user,
        reviews_needed=int(params["reviews_needed"]),
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
