"""What the version, principle and few-shot routes share: loading rows, the version page's
context, refusing edits to a published version, and answering an edit that lost a race."""

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from sqlmodel import Session

from app.constitutions import (
    NotEditable,
    StaleEdit,
    draft_of,
    few_shots_of,
    principles_of,
    require_draft,
)
from app.models import Constitution, ConstitutionVersion, Principle
from app.templating import render
from app.users import usernames

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


def constitution_of(session: Session, version: ConstitutionVersion) -> Constitution:
    constitution = session.get(Constitution, version.constitution_id)
    assert constitution is not None
    return constitution


def version_context(session: Session, version: ConstitutionVersion, **extra: Any) -> dict[str, Any]:
    constitution = constitution_of(session, version)
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


def refuse_if_published(version: ConstitutionVersion) -> None:
    """A 409 before the form is even read: there is nothing to correct in it."""
    try:
        require_draft(version)
    except NotEditable as exc:
        raise HTTPException(409, str(exc)) from None


def answer_stale_edit(
    request: Request,
    session: Session,
    stale: StaleEdit,
    *,
    reload: Principle | ConstitutionVersion,
    template: str,
    context: Callable[[str], dict[str, Any]],
) -> Response:
    """Someone else's save won: drop this one, reload theirs, and show it with a 409.

    `context` gets the message and builds the page only after the reload, so the page shows
    their version; where the form had text, it puts the user's unsaved text beside it.
    """
    session.rollback()
    session.refresh(reload)
    return render(request, template, context(str(stale)), status_code=409)
