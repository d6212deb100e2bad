"""A draft's few-shot conversations: add or save one, delete one."""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.auth import Author
from app.constitutions import StaleEdit, delete_few_shot, save_few_shot, validate_turns
from app.ids import LockVersion, PositiveId
from app.models import ConstitutionVersion, FewShotConversation
from app.routes.version_shared import (
    answer_stale_edit,
    load_version,
    refuse_if_published,
    version_context,
)
from app.session_dep import SessionDep
from app.templating import render

router = APIRouter(prefix="/versions")


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
    refuse_if_published(version)
    few_shot = _load_few_shot(session, version, few_shot_id) if few_shot_id is not None else None
    turns = _turns(role or [], content or [])
    problem = validate_turns(turns)
    if problem is not None:
        context = version_context(
            session, version, few_shot_error=problem, few_shot_error_id=few_shot_id
        )
        return render(request, "constitutions/version.html", context, status_code=400)
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
        return answer_stale_edit(
            request,
            session,
            stale,
            reload=version,
            template="constitutions/version.html",
            context=lambda message: version_context(
                session, version, few_shot_error=message, few_shot_error_id=few_shot_id
            ),
        )
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
    refuse_if_published(version)
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
        return answer_stale_edit(
            request,
            session,
            stale,
            reload=version,
            template="constitutions/version.html",
            context=lambda message: version_context(
                session, version, few_shot_error=message, few_shot_error_id=few_shot_id
            ),
        )
    session.commit()
    return RedirectResponse(f"/versions/{version.id}#few-shots", status_code=303)
