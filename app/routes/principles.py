"""A draft's principles: add, edit, delete, reorder, and preview the prompts they make."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author, Viewer
from app.constitutions import (
    PrincipleFields,
    StaleEdit,
    add_principle,
    delete_principle,
    move_principle,
    to_document,
    update_principle,
    validate_principle,
)
from app.ids import LockVersion, PositiveId
from app.models import ConstitutionVersion, Principle
from app.recipe.documents import PrincipleDoc
from app.recipe.messages import (
    SAMPLE_CONVERSATION,
    SAMPLE_CRITIQUE,
    critique_messages,
    revision_messages,
)
from app.routes.version_shared import (
    answer_stale_edit,
    constitution_of,
    load_principle,
    load_version,
    refuse_if_published,
    version_context,
)
from app.session_dep import SessionDep
from app.templating import is_htmx, render

router = APIRouter(prefix="/versions")


def _fields(
    key: str,
    critique_request: str,
    revision_request: str,
    comparison_instruction: str,
    tags: str,
    enabled: bool,
) -> PrincipleFields:
    return PrincipleFields(
        key=key.strip(),
        critique_request=critique_request,
        revision_request=revision_request,
        comparison_instruction=comparison_instruction,
        tags=tags,
        enabled=enabled,
    )


@router.post("/{version_id}/principles")
def create_principle(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    key: Annotated[str, Form()] = "",
    critique_request: Annotated[str, Form()] = "",
    revision_request: Annotated[str, Form()] = "",
    comparison_instruction: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
    enabled: Annotated[bool, Form()] = False,
) -> Response:
    version = load_version(session, version_id)
    refuse_if_published(version)
    fields = _fields(key, critique_request, revision_request, comparison_instruction, tags, enabled)
    errors = validate_principle(session=session, version=version, fields=fields, principle_id=None)
    if errors:
        context = version_context(
            session, version, new_principle=fields.__dict__, new_errors=errors
        )
        return render(request, "constitutions/version.html", context, status_code=400)
    principle = add_principle(session=session, version=version, fields=fields, user=user)
    session.commit()
    return RedirectResponse(f"/versions/{version.id}#principle-{principle.id}", status_code=303)


def _row(
    request: Request,
    session: Session,
    version: ConstitutionVersion,
    principle: Principle,
    **extra: Any,
) -> Response:
    status = extra.pop("status_code", 200)
    template = (
        "constitutions/_principle_form.html"
        if extra.get("editing")
        else "constitutions/_principle.html"
    )
    context = {"version": version, "p": principle, "names": {}, **extra}
    return render(request, template, context, status_code=status)


@router.get("/{version_id}/principles/{principle_id}")
def principle_row(
    request: Request,
    session: SessionDep,
    user: Viewer,
    version_id: PositiveId,
    principle_id: PositiveId,
) -> Response:
    version = load_version(session, version_id)
    return _row(request, session, version, load_principle(session, version, principle_id))


@router.get("/{version_id}/principles/{principle_id}/edit")
def edit_principle(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    principle_id: PositiveId,
) -> Response:
    version = load_version(session, version_id)
    refuse_if_published(version)
    principle = load_principle(session, version, principle_id)
    if not is_htmx(request):
        return render(
            request,
            "constitutions/edit_principle.html",
            {"version": version, "p": principle, "editing": True, "errors": {}, "form": {}},
        )
    return _row(request, session, version, principle, editing=True, errors={}, form={})


@router.post("/{version_id}/principles/{principle_id}")
def save_principle(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    principle_id: PositiveId,
    lock_version: Annotated[LockVersion, Form()],
    key: Annotated[str, Form()] = "",
    critique_request: Annotated[str, Form()] = "",
    revision_request: Annotated[str, Form()] = "",
    comparison_instruction: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
    enabled: Annotated[bool, Form()] = False,
) -> Response:
    version = load_version(session, version_id)
    refuse_if_published(version)
    principle = load_principle(session, version, principle_id)
    fields = _fields(key, critique_request, revision_request, comparison_instruction, tags, enabled)
    template = (
        "constitutions/_principle_form.html"
        if is_htmx(request)
        else "constitutions/edit_principle.html"
    )
    errors = validate_principle(
        session=session, version=version, fields=fields, principle_id=principle.id
    )
    if errors:
        context = {
            "version": version,
            "p": principle,
            "editing": True,
            "errors": errors,
            "form": {**fields.__dict__, "lock_version": lock_version},
        }
        return render(request, template, context, status_code=400)
    try:
        update_principle(
            session=session,
            principle=principle,
            fields=fields,
            expected_lock=lock_version,
            user=user,
        )
    except StaleEdit as stale:
        return answer_stale_edit(
            request,
            session,
            stale,
            reload=principle,
            template=template,
            context=lambda message: {
                "version": version,
                "p": principle,
                "editing": True,
                "errors": {},
                "form": {},
                "stale": message,
                "mine": fields.__dict__,
            },
        )
    session.commit()
    if is_htmx(request):
        return _row(request, session, version, principle)
    return RedirectResponse(f"/versions/{version.id}#principle-{principle.id}", status_code=303)


@router.post("/{version_id}/principles/{principle_id}/delete")
def remove_principle(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    principle_id: PositiveId,
    lock_version: Annotated[LockVersion, Form()],
) -> Response:
    version = load_version(session, version_id)
    refuse_if_published(version)
    principle = load_principle(session, version, principle_id)
    try:
        delete_principle(
            session=session, principle=principle, expected_lock=lock_version, user=user
        )
    except StaleEdit as stale:
        return answer_stale_edit(
            request,
            session,
            stale,
            reload=principle,
            template="constitutions/_principle.html",
            context=lambda message: {
                "version": version,
                "p": principle,
                "names": {},
                "stale": message,
            },
        )
    session.commit()
    return _principles_or_page(request, session, version)


def _principles_or_page(
    request: Request, session: Session, version: ConstitutionVersion
) -> Response:
    if is_htmx(request):
        return render(
            request,
            "constitutions/version.html",
            version_context(session, version),
            block="principles",
        )
    return RedirectResponse(f"/versions/{version.id}", status_code=303)


@router.post("/{version_id}/principles/{principle_id}/move")
def move(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    principle_id: PositiveId,
    offset: Annotated[int, Form(ge=-1000, le=1000)],
) -> Response:
    version = load_version(session, version_id)
    refuse_if_published(version)
    move_principle(
        session=session,
        principle=load_principle(session, version, principle_id),
        offset=offset,
        user=user,
    )
    session.commit()
    return _principles_or_page(request, session, version)


@router.get("/{version_id}/principles/{principle_id}/preview")
def preview(
    request: Request,
    session: SessionDep,
    user: Viewer,
    version_id: PositiveId,
    principle_id: PositiveId,
    prompt: str = "",
) -> Response:
    version = load_version(session, version_id)
    principle = load_principle(session, version, principle_id)
    doc = to_document(session=session, version=version)
    conversation = (
        [{"role": "user", "content": prompt.strip()}] if prompt.strip() else SAMPLE_CONVERSATION
    )
    as_doc = PrincipleDoc(
        key=principle.key,
        critique_request=principle.critique_request,
        revision_request=principle.revision_request,
        comparison_instruction=principle.comparison_instruction,
    )
    context = {
        "version": version,
        "constitution": constitution_of(session, version),
        "p": principle,
        "prompt": prompt,
        "critique_turns": critique_messages(doc.system_prompt, doc.few_shots, conversation, as_doc),
        "revision_turns": revision_messages(
            doc.system_prompt, doc.few_shots, conversation, as_doc, SAMPLE_CRITIQUE
        ),
    }
    template = "constitutions/_preview.html" if is_htmx(request) else "constitutions/preview.html"
    return render(request, template, context)
