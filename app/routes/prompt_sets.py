from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.auth import Author, Viewer
from app.forms import parse_numbers
from app.ids import PageNumber, PositiveId
from app.jobs import launch_job
from app.models import JobStatus, PromptSet
from app.prompt_files import PromptFileError, PromptFormat, count_prompts
from app.prompt_sets import (
    PromptSetError,
    delete_prompt_set,
    list_prompt_sets,
    sample_prompt_set,
    search_prompts,
)
from app.queue import JobQueue, get_job_queue
from app.recipe.evaluation import SuitePurpose
from app.session_dep import SessionDep
from app.settings import get_settings
from app.specs.imports import (
    MAX_NAME_CHARS,
    MAX_XSTEST_NAME_CHARS,
    XSTEST_PURPOSE_MESSAGE,
    PromptImportSpec,
)
from app.templating import render
from app.upload_store import remove_upload, upload_byte_limit
from app.uploads import save_upload, upload_error

router = APIRouter(prefix="/prompt-sets")

PER_PAGE = 50
FORMAT_LABELS = {
    PromptFormat.HH_RLHF: "HH-RLHF JSON lines (.jsonl or .jsonl.gz)",
    PromptFormat.JSONL: "JSON lines, prompt in a field",
    PromptFormat.CSV: "CSV, prompt in a column",
    PromptFormat.TEXT: "Plain text, one prompt per line",
    PromptFormat.XSTEST: "XSTest prompts CSV (two suites, from the label column)",
}
PURPOSES = {purpose.value: f"{purpose.label}: {purpose.description}" for purpose in SuitePurpose}


@router.get("")
def prompt_sets(request: Request, session: SessionDep, user: Viewer) -> Response:
    return render(request, "prompt_sets/list.html", {"sets": list_prompt_sets(session=session)})


def _import_form(
    request: Request, form: dict[str, str], errors: dict[str, str] | None = None
) -> Response:
    context = {
        "form": form,
        "errors": errors or {},
        "formats": FORMAT_LABELS,
        "purposes": PURPOSES,
    }
    return render(request, "prompt_sets/import.html", context, status_code=400 if errors else 200)


@router.get("/import")
def import_form(
    request: Request,
    user: Author,
    name: str = "",
    format: str = "hh-rlhf",
    field: str = "",
    column: str = "",
    purpose: str = "",
) -> Response:
    form = {"name": name, "format": format, "field": field, "column": column, "purpose": purpose}
    return _import_form(request, form)


@router.post("/import")
def import_prompt_set(
    request: Request,
    session: SessionDep,
    user: Author,
    queue: Annotated[JobQueue, Depends(get_job_queue)],
    file: Annotated[UploadFile | None, File()] = None,
    name: Annotated[str, Form()] = "",
    format: Annotated[str, Form()] = "",
    field: Annotated[str, Form()] = "",
    column: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    purpose: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "name": name.strip(),
        "format": format,
        "field": field.strip(),
        "column": column.strip(),
        "description": description,
        "purpose": purpose.strip(),
    }
    errors: dict[str, str] = {}
    name_limit = MAX_XSTEST_NAME_CHARS if format == PromptFormat.XSTEST else MAX_NAME_CHARS
    if not form["name"]:
        errors["name"] = "Give the set a name."
    elif len(form["name"]) > name_limit:
        errors["name"] = f"At most {name_limit} characters."
    if format not in {f.value for f in PromptFormat}:
        errors["format"] = "Choose a format."
    elif format == PromptFormat.JSONL and not form["field"]:
        errors["field"] = "Name the JSON field that holds the prompt."
    elif format == PromptFormat.CSV and not form["column"]:
        errors["column"] = "Name the CSV column that holds the prompt."
    if form["purpose"] and form["purpose"] not in PURPOSES:
        errors["purpose"] = "Choose a purpose from the list, or none."
    elif form["purpose"] and format == PromptFormat.XSTEST:
        errors["purpose"] = XSTEST_PURPOSE_MESSAGE
    file_error = upload_error(file, required=True)
    if file_error:
        errors["file"] = file_error
    if errors or file is None:
        return _import_form(request, form, errors)

    path = save_upload(file)
    try:
        spec = PromptImportSpec(
            name=form["name"],
            description=form["description"],
            format=PromptFormat(format),
            field=form["field"] or None,
            column=form["column"] or None,
            purpose=SuitePurpose(form["purpose"]) if form["purpose"] else None,
            path=str(path),
            filename=file.filename or path.name,
            user_id=user.id,
        )
        # Streamed, keeping no prompt, and bounded by the upload limit once decompressed.
        if path.stat().st_size <= get_settings().CHECK_UPLOAD_IN_REQUEST_MB * 2**20:
            count_prompts(path, spec.file_spec(), max_bytes=upload_byte_limit())
        job = launch_job(
            session=session,
            queue=queue,
            kind="import_prompts",
            parameters=spec.to_parameters(),
            user=user,
        )
    except PromptFileError as exc:
        remove_upload(path)
        return _import_form(request, form, {"file": f"{file.filename}: {exc}"})
    except ValidationError as exc:  # a bound the checks above leave to the spec
        remove_upload(path)
        return _import_form(request, form, _spec_errors(exc, form))
    except BaseException:
        remove_upload(path)
        raise
    if job.status == JobStatus.FAILED:  # never queued, so no job will read or remove the file
        remove_upload(path)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def _spec_errors(exc: ValidationError, form: dict[str, str]) -> dict[str, str]:
    """A message per form field; one about the upload itself goes beside the file."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        errors.setdefault(name if name in form else "file", message)
    return errors


def _load(session: SessionDep, set_id: int) -> PromptSet:
    prompt_set = session.get(PromptSet, set_id)
    if prompt_set is None:
        raise HTTPException(404, f"no prompt set {set_id}")
    return prompt_set


def _page_context(
    session: Session,
    prompt_set: PromptSet,
    *,
    q: str,
    page: int,
    sample_form: dict[str, str],
    sample_errors: dict[str, str],
) -> dict[str, Any]:
    prompts, total = search_prompts(
        session=session, prompt_set_id=prompt_set.id or 0, query=q, page=page, per_page=PER_PAGE
    )
    return {
        "set": prompt_set,
        "prompts": prompts,
        "total": total,
        "q": q,
        "page": max(page, 1),
        "pages": max(1, -(-total // PER_PAGE)),
        "parent": session.get(PromptSet, prompt_set.parent_id) if prompt_set.parent_id else None,
        "sample_errors": sample_errors,
        "sample_form": sample_form,
    }


@router.get("/{set_id}")
def prompt_set_page(
    request: Request,
    session: SessionDep,
    user: Viewer,
    set_id: PositiveId,
    q: str = "",
    page: PageNumber = 1,
) -> Response:
    prompt_set = _load(session, set_id)
    form = {
        "size": str(min(100, prompt_set.prompt_count)),
        "seed": "0",
        "name": f"{prompt_set.name} (sample)",
    }
    context = _page_context(session, prompt_set, q=q, page=page, sample_form=form, sample_errors={})
    block = "results" if request.headers.get("hx-target") == "results" else None
    return render(request, "prompt_sets/page.html", context, block=block)


@router.post("/{set_id}/delete")
def delete(request: Request, session: SessionDep, user: Author, set_id: PositiveId) -> Response:
    try:
        delete_prompt_set(session=session, prompt_set=_load(session, set_id), user=user)
    except PromptSetError as exc:
        raise HTTPException(409, str(exc)) from exc
    session.commit()
    return RedirectResponse("/prompt-sets", status_code=303)


@router.post("/{set_id}/sample")
def sample(
    request: Request,
    session: SessionDep,
    user: Author,
    set_id: PositiveId,
    size: Annotated[str, Form()] = "",
    seed: Annotated[str, Form()] = "0",
    name: Annotated[str, Form()] = "",
) -> Response:
    prompt_set = _load(session, set_id)
    form = {"size": size, "seed": seed, "name": name.strip()}
    errors: dict[str, str] = {}
    numbers = parse_numbers(
        form, {"size": (int, 1, 10_000_000), "seed": (int, -(2**31), 2**31 - 1)}, errors
    )
    if "size" not in errors and numbers["size"] > prompt_set.prompt_count:
        errors["size"] = f"The set has only {prompt_set.prompt_count} prompts."
    if not form["name"]:
        errors["name"] = "Give the sample a name."
    if not errors:
        try:
            new_set = sample_prompt_set(
                session=session,
                source=prompt_set,
                size=numbers["size"],
                seed=numbers["seed"],
                name=form["name"],
                user=user,
            )
        except PromptSetError as exc:
            errors["size"] = str(exc)
        else:
            session.commit()
            return RedirectResponse(f"/prompt-sets/{new_set.id}", status_code=303)
    context = _page_context(
        session, prompt_set, q="", page=1, sample_form=form, sample_errors=errors
    )
    return render(request, "prompt_sets/page.html", context, status_code=400)
