"""Reading and editing one constitution version: principles, system prompt, few-shots."""

import io
import re
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author, Viewer
from app.constitutions import (
    NotEditable,
    PrincipleFields,
    StaleEdit,
    add_principle,
    delete_few_shot,
    delete_principle,
    draft_of,
    few_shots_of,
    move_principle,
    principles_of,
    publish_version,
    save_few_shot,
    to_document,
    update_principle,
    update_system_prompt,
    validate_principle,
    validate_turns,
)
from app.db import SessionDep
from app.ids import LockVersion, PositiveId
from app.models import Constitution, ConstitutionVersion, FewShotConversation, Principle
from app.recipe.documents import PrincipleDoc
from app.recipe.formats import write_anthropic, write_huggingface, write_project
from app.recipe.messages import (
    SAMPLE_CONVERSATION,
    SAMPLE_CRITIQUE,
    critique_messages,
    revision_messages,
)
from app.templating import is_htmx, render
from app.users import usernames

router = APIRouter(prefix="/versions")

EXPORT_FORMATS = {
    "project-json": "This project's JSON (everything)",
    "project-yaml": "This project's YAML (everything)",
    "huggingface": "Hugging Face recipe JSON",
    "anthropic": "Anthropic's files (zip)",
}


def load_version(session: Session, version_id: int) -> ConstitutionVersion:
    version = session.get(ConstitutionVersion, version_id)
    if version is None:
        raise HTTPException(404, f"no constitution version {version_id}")
    return version


def load_principle(session: Session, version: ConstitutionVersion, principle_id: int) -> Principle:
    principle = session.get(Principle, principle_id)
    if principle is None or principle.version_id != version.id:
        raise HTTPException(404, f"no principle {principle_id} in this version")
    return principle


def _constitution(session: Session, version: ConstitutionVersion) -> Constitution:
    constitution = session.get(Constitution, version.constitution_id)
    assert constitution is not None
    return constitution


def version_context(session: Session, version: ConstitutionVersion, **extra: Any) -> dict[str, Any]:
    constitution = _constitution(session, version)
    return {
        "version": version,
        "constitution": constitution,
        "principles": principles_of(session=session, version=version),
        "few_shots": few_shots_of(session=session, version=version),
        "draft": draft_of(session=session, constitution=constitution),
        "export_formats": EXPORT_FORMATS,
        "names": usernames(session=session),
        "new_principle": {},
        "new_errors": {},
        **extra,
    }


def _refuse_if_published(version: ConstitutionVersion) -> None:
    if not version.is_draft:
        raise HTTPException(
            409, f"{version.label} is published and cannot change: start a new draft from it"
        )


@router.get("/{version_id}")
def version_page(
    request: Request, session: SessionDep, user: Viewer, version_id: PositiveId
) -> Response:
    version = load_version(session, version_id)
    return render(request, "constitutions/version.html", version_context(session, version))


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
    _refuse_if_published(version)
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
    _refuse_if_published(version)
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
    _refuse_if_published(version)
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
        session.rollback()
        session.refresh(principle)
        context = {
            "version": version,
            "p": principle,
            "editing": True,
            "errors": {},
            "form": {},
            "stale": str(stale),
            "mine": fields.__dict__,
        }
        return render(request, template, context, status_code=409)
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
    _refuse_if_published(version)
    principle = load_principle(session, version, principle_id)
    try:
        delete_principle(
            session=session, principle=principle, expected_lock=lock_version, user=user
        )
    except StaleEdit as stale:
        session.rollback()
        session.refresh(principle)
        return _row(request, session, version, principle, stale=str(stale), status_code=409)
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
    _refuse_if_published(version)
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
        "constitution": _constitution(session, version),
        "p": principle,
        "prompt": prompt,
        "critique_turns": critique_messages(doc.system_prompt, doc.few_shots, conversation, as_doc),
        "revision_turns": revision_messages(
            doc.system_prompt, doc.few_shots, conversation, as_doc, SAMPLE_CRITIQUE
        ),
    }
    template = "constitutions/_preview.html" if is_htmx(request) else "constitutions/preview.html"
    return render(request, template, context)


@router.post("/{version_id}/system-prompt")
def save_system_prompt(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    lock_version: Annotated[LockVersion, Form()],
    system_prompt: Annotated[str, Form()] = "",
) -> Response:
    version = load_version(session, version_id)
    _refuse_if_published(version)
    try:
        update_system_prompt(
            session=session,
            version=version,
            text=system_prompt,
            expected_lock=lock_version,
            user=user,
        )
    except StaleEdit as stale:
        session.rollback()
        session.refresh(version)
        context = version_context(
            session, version, system_error=str(stale), system_mine=system_prompt
        )
        return render(request, "constitutions/version.html", context, status_code=409)
    except ValueError as exc:
        session.rollback()
        context = version_context(
            session, version, system_error=str(exc), system_mine=system_prompt
        )
        return render(request, "constitutions/version.html", context, status_code=400)
    session.commit()
    return RedirectResponse(f"/versions/{version.id}#system-prompt", status_code=303)


def _turns(roles: list[str], contents: list[str]) -> list[dict[str, str]]:
    return [
        {"role": role, "content": content.strip()}
        for role, content in zip(roles, contents, strict=False)
        if content.strip()
    ]


def _load_few_shot(
    session: Session, version: ConstitutionVersion, few_shot_id: int
) -> FewShotConversation:
    few_shot = session.get(FewShotConversation, few_shot_id)
    if few_shot is None or few_shot.version_id != version.id:
        raise HTTPException(404, f"no few-shot conversation {few_shot_id} in this version")
    return few_shot


@router.post("/{version_id}/few-shots")
@router.post("/{version_id}/few-shots/{few_shot_id}")
def save_few_shot_form(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    lock_version: Annotated[LockVersion, Form()],
    few_shot_id: PositiveId | None = None,
    title: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "critique-revision",
    role: Annotated[list[str] | None, Form()] = None,
    content: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Adds a few-shot conversation, or saves the one named in the path."""
    version = load_version(session, version_id)
    _refuse_if_published(version)
    few_shot = _load_few_shot(session, version, few_shot_id) if few_shot_id is not None else None
    turns = _turns(role or [], content or [])

    def refuse(problem: str, status_code: int) -> Response:
        context = version_context(
            session, version, few_shot_error=problem, few_shot_error_id=few_shot_id
        )
        return render(request, "constitutions/version.html", context, status_code=status_code)

    problem = validate_turns(turns)
    if problem is not None:
        return refuse(problem, 400)
    try:
        saved = save_few_shot(
            session=session,
            version=version,
            few_shot=few_shot,
            title=title,
            kind=kind,
            turns=turns,
            expected_lock=lock_version,
            user=user,
        )
    except StaleEdit as stale:
        session.rollback()
        session.refresh(version)
        return refuse(str(stale), 409)
    session.commit()
    return RedirectResponse(f"/versions/{version.id}#few-shot-{saved.id}", status_code=303)


@router.post("/{version_id}/few-shots/{few_shot_id}/delete")
def remove_few_shot(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    few_shot_id: PositiveId,
    lock_version: Annotated[LockVersion, Form()],
) -> Response:
    version = load_version(session, version_id)
    _refuse_if_published(version)
    few_shot = _load_few_shot(session, version, few_shot_id)
    try:
        delete_few_shot(
            session=session,
            version=version,
            few_shot=few_shot,
            expected_lock=lock_version,
            user=user,
        )
    except StaleEdit as stale:
        session.rollback()
        session.refresh(version)
        context = version_context(
            session, version, few_shot_error=str(stale), few_shot_error_id=few_shot_id
        )
        return render(request, "constitutions/version.html", context, status_code=409)
    session.commit()
    return RedirectResponse(f"/versions/{version.id}#few-shots", status_code=303)


@router.post("/{version_id}/publish")
def publish(
    request: Request,
    session: SessionDep,
    user: Author,
    version_id: PositiveId,
    note: Annotated[str, Form()] = "",
) -> Response:
    version = load_version(session, version_id)
    try:
        publish_version(session=session, version=version, user=user, note=note)
    except NotEditable as exc:
        session.rollback()
        return render(
            request,
            "constitutions/version.html",
            version_context(session, version, publish_error=str(exc)),
            status_code=400,
        )
    session.commit()
    return RedirectResponse(f"/versions/{version.id}", status_code=303)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "constitution"


@router.get("/{version_id}/export")
def export(
    request: Request,
    session: SessionDep,
    user: Viewer,
    version_id: PositiveId,
    format: str = "project-json",
) -> Response:
    version = load_version(session, version_id)
    doc = to_document(session=session, version=version)
    published = version.published_at.isoformat() if version.published_at else None
    stem = f"{_slug(doc.name)}-{version.label}"
    if format == "project-json":
        body, media, filename = (
            write_project(doc, version=version.number, published_at=published),
            "application/json",
            f"{stem}.json",
        )
    elif format == "project-yaml":
        body, media, filename = (
            write_project(doc, yaml=True, version=version.number, published_at=published),
            "application/yaml",
            f"{stem}.yaml",
        )
    elif format == "huggingface":
        body, media, filename = (
            write_huggingface(doc),
            "application/json",
            f"{stem}-huggingface.json",
        )
    elif format == "anthropic":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in write_anthropic(doc).items():
                archive.writestr(name, data)
        body, media, filename = buffer.getvalue(), "application/zip", f"{stem}-anthropic.zip"
    else:
        raise HTTPException(
            400, f"unknown export format '{format}': one of {', '.join(EXPORT_FORMATS)}"
        )
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
