from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import Author, Viewer
from app.constitutions import (
    MAX_NAME,
    create_constitution,
    default_document,
    draft_of,
    import_as_draft,
    start_draft,
    to_document,
    versions_of,
)
from app.ids import PositiveId, parse_id
from app.models import Constitution, ConstitutionVersion
from app.recipe.diff import diff_constitutions
from app.recipe.documents import ConstitutionDoc, ConstitutionFileError
from app.recipe.formats import detect_and_read
from app.session_dep import SessionDep
from app.templating import render
from app.users import usernames

router = APIRouter(prefix="/constitutions")

MAX_IMPORT_BYTES = 5 * 1024 * 1024


def load_constitution(session: Session, constitution_id: int) -> Constitution:
    constitution = session.get(Constitution, constitution_id)
    if constitution is None:
        raise HTTPException(404, f"no constitution {constitution_id}")
    return constitution


def _name_error(session: Session, name: str) -> str | None:
    if not name:
        return "Give the constitution a name."
    if len(name) > MAX_NAME:
        return f"At most {MAX_NAME} characters."
    if session.exec(select(Constitution).where(Constitution.name == name)).first() is not None:
        return f"A constitution named '{name}' exists already."
    return None


def _list_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    constitutions = session.exec(select(Constitution).order_by(col(Constitution.name))).all()
    rows = []
    for constitution in constitutions:
        versions = versions_of(session=session, constitution=constitution)
        published = [v for v in versions if not v.is_draft]
        rows.append(
            {
                "constitution": constitution,
                "latest": published[0] if published else None,
                "draft": next((v for v in versions if v.is_draft), None),
            }
        )
    return render(
        request,
        "constitutions/list.html",
        {"rows": rows, "form": form, "errors": errors},
        status_code=400 if errors else 200,
    )


@router.get("")
def constitutions(request: Request, session: SessionDep, user: Viewer) -> Response:
    return _list_page(request, session, {"start": "default"}, {})


@router.post("")
def create(
    request: Request,
    session: SessionDep,
    user: Author,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    start: Annotated[str, Form()] = "default",
) -> Response:
    form = {"name": name.strip(), "description": description.strip(), "start": start}
    error = _name_error(session, form["name"])
    if error:
        return _list_page(request, session, form, {"name": error})
    doc = default_document() if start == "default" else ConstitutionDoc(name="", principles=[])
    doc.name, doc.description, doc.note = form["name"], form["description"][:2000], ""
    _, draft = create_constitution(session=session, doc=doc, user=user, source_format="new")
    session.commit()
    return RedirectResponse(f"/versions/{draft.id}", status_code=303)


def _import_page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str] | None = None
) -> Response:
    choices = session.exec(select(Constitution).order_by(col(Constitution.name))).all()
    context = {"form": form, "errors": errors or {}, "constitutions": choices}
    return render(request, "constitutions/import.html", context, status_code=400 if errors else 200)


@router.get("/import")
def import_form(request: Request, session: SessionDep, user: Author, into: str = "") -> Response:
    return _import_page(request, session, {"name": "", "into": into})


@router.post("/import")
def import_files(
    request: Request,
    session: SessionDep,
    user: Author,
    files: Annotated[list[UploadFile] | None, File()] = None,
    name: Annotated[str, Form()] = "",
    into: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name.strip(), "into": into}
    into_id = parse_id(into)
    if into.strip() and into_id is None:
        # Only a tampered form sends this: the field is a list of constitutions.
        raise HTTPException(422, "into: not a constitution's id")
    uploads = [f for f in files or [] if f.filename]
    if not uploads:
        return _import_page(request, session, form, {"files": "Choose one or more files."})
    contents: dict[str, bytes] = {}
    for upload in uploads:
        data = upload.file.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            return _import_page(request, session, form, {"files": f"{upload.filename}: over 5 MB."})
        contents[Path(upload.filename or "").name] = data
    try:
        source_format, doc = detect_and_read(contents, form["name"] or "Imported constitution")
    except ConstitutionFileError as exc:
        return _import_page(request, session, form, {"files": str(exc)})

    if into_id is not None:
        constitution = load_constitution(session, into_id)
        draft = import_as_draft(
            session=session,
            constitution=constitution,
            doc=doc,
            user=user,
            source_format=source_format,
        )
    else:
        if form["name"]:
            doc.name = form["name"]
        error = _name_error(session, doc.name)
        if error:
            return _import_page(request, session, form, {"name": error})
        _, draft = create_constitution(
            session=session, doc=doc, user=user, source_format=source_format
        )
    session.commit()
    return RedirectResponse(f"/versions/{draft.id}", status_code=303)


@router.get("/{constitution_id}")
def overview(
    request: Request, session: SessionDep, user: Viewer, constitution_id: PositiveId
) -> Response:
    constitution = load_constitution(session, constitution_id)
    versions = versions_of(session=session, constitution=constitution)
    names = usernames(session=session)
    published = [v for v in versions if not v.is_draft]
    return render(
        request,
        "constitutions/overview.html",
        {
            "constitution": constitution,
            "versions": versions,
            "names": names,
            "draft": draft_of(session=session, constitution=constitution),
            "default_a": published[1].id
            if len(published) > 1
            else (published[0].id if published else None),
            "default_b": versions[0].id if versions else None,
        },
    )


@router.post("/{constitution_id}/drafts")
def new_draft(
    request: Request,
    session: SessionDep,
    user: Author,
    constitution_id: PositiveId,
    from_version: Annotated[PositiveId, Form()],
) -> Response:
    constitution = load_constitution(session, constitution_id)
    source = session.get(ConstitutionVersion, from_version)
    if source is None or source.constitution_id != constitution.id:
        raise HTTPException(404, f"no version {from_version} of this constitution")
    draft = start_draft(session=session, constitution=constitution, source=source, user=user)
    session.commit()
    return RedirectResponse(f"/versions/{draft.id}", status_code=303)


@router.get("/{constitution_id}/diff")
def diff(
    request: Request,
    session: SessionDep,
    user: Viewer,
    constitution_id: PositiveId,
    a: PositiveId,
    b: PositiveId,
) -> Response:
    constitution = load_constitution(session, constitution_id)
    old, new = session.get(ConstitutionVersion, a), session.get(ConstitutionVersion, b)
    if (
        old is None
        or new is None
        or {old.constitution_id, new.constitution_id} != {constitution.id}
    ):
        raise HTTPException(404, "both versions must belong to this constitution")
    changes = diff_constitutions(
        to_document(session=session, version=old), to_document(session=session, version=new)
    )
    return render(
        request,
        "constitutions/diff.html",
        {
            "constitution": constitution,
            "old": old,
            "new": new,
            "diff": changes,
            "versions": versions_of(session=session, constitution=constitution),
        },
    )
