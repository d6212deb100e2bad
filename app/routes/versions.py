"""One constitution version: its page, its system prompt, publishing it, exporting it."""

import io
import re
import zipfile
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from app.auth import Author, Viewer
from app.constitution_ab import compare_link, finished_runs, previous_version, shared_prompts
from app.constitutions import (
    NotEditable,
    StaleEdit,
    publish_version,
    to_document,
    update_system_prompt,
)
from app.ids import LockVersion, PositiveId
from app.recipe.formats import write_anthropic, write_huggingface, write_project
from app.routes.version_shared import (
    EXPORT_FORMATS,
    answer_stale_edit,
    load_version,
    refuse_if_published,
    version_context,
)
from app.session_dep import SessionDep
from app.templating import render

router = APIRouter(prefix="/versions")


@router.get("/{version_id}")
def version_page(
    request: Request, session: SessionDep, user: Viewer, version_id: PositiveId
) -> Response:
    version = load_version(session, version_id)
    previous = previous_version(session, version)
    compare = compare_link(
        version_id=version_id,
        previous_id=previous.id if previous else None,
        previous_label=previous.label if previous else "",
        runs=finished_runs(session),
        share_prompts=lambda a, b: shared_prompts(session, a, b) > 0,
    )
    return render(
        request, "constitutions/version.html", version_context(session, version, compare=compare)
    )


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
    refuse_if_published(version)
    try:
        update_system_prompt(
            session=session,
            version=version,
            text=system_prompt,
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
                session, version, system_error=message, system_mine=system_prompt
            ),
        )
    except ValueError as exc:
        session.rollback()
        context = version_context(
            session, version, system_error=str(exc), system_mine=system_prompt
        )
        return render(request, "constitutions/version.html", context, status_code=400)
    session.commit()
    return RedirectResponse(f"/versions/{version.id}#system-prompt", status_code=303)


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
