from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author
from app.db import SessionDep
from app.ids import parse_id
from app.jobs import launch_job
from app.queue import JobQueue, get_job_queue
from app.recipe.training_spec import PRESETS
from app.templating import render
from app.training import METHODS, SPEC_FIELDS, spec_form, training_choices, validate_training

router = APIRouter(prefix="/training")


def _form_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    context = {
        "choices": training_choices(session=session),
        "methods": METHODS,
        "presets": list(PRESETS),
        "form": form,
        "errors": errors,
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
) -> Response:
    """The form, its numbers filled from the preset (changing method or preset refills them).

    Links pass `model` and `dataset`; the form's own refill sends its field names.
    """
    form = {
        "base_model_id": model or base_model_id,
        "dataset_id": dataset or dataset_id,
        "method": method,
        "preset": preset,
        "output_name": output_name,
        **spec_form(preset, method),
    }
    return _form_page(request, session, form, {})


@router.post("")
def launch(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    base_model_id: Annotated[str, Form()] = "",
    dataset_id: Annotated[str, Form()] = "",
    method: Annotated[str, Form()] = "",
    preset: Annotated[str, Form()] = "",
    output_name: Annotated[str, Form()] = "",
    use_lora: Annotated[str, Form()] = "",
    learning_rate: Annotated[str, Form()] = "",
    num_train_epochs: Annotated[str, Form()] = "",
    max_steps: Annotated[str, Form()] = "",
    per_device_train_batch_size: Annotated[str, Form()] = "",
    gradient_accumulation_steps: Annotated[str, Form()] = "",
    max_length: Annotated[str, Form()] = "",
    beta: Annotated[str, Form()] = "",
    lora_r: Annotated[str, Form()] = "",
    lora_alpha: Annotated[str, Form()] = "",
    seed: Annotated[str, Form()] = "",
    save_steps: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "base_model_id": str(parse_id(base_model_id) or ""),
        "dataset_id": str(parse_id(dataset_id) or ""),
        "method": method,
        "preset": preset,
        "output_name": output_name,
        "use_lora": use_lora,
        "learning_rate": learning_rate,
        "num_train_epochs": num_train_epochs,
        "max_steps": max_steps,
        "per_device_train_batch_size": per_device_train_batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "max_length": max_length,
        "beta": beta,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "seed": seed,
        "save_steps": save_steps,
    }
    assert set(SPEC_FIELDS) <= set(form)
    params, errors = validate_training(session=session, form=form)
    if errors:
        return _form_page(request, session, form, errors)
    job = launch_job(
        session=session,
        queue=queue,
        kind="train",
        parameters={**params, "user_id": user.id},
        user=user,
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
