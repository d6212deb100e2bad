from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from app.auth import Author, Viewer
from app.generation import BACKENDS, register_model, validate_model
from app.models import Dataset, LanguageModel, Role
from app.session_dep import SessionDep
from app.templating import render

router = APIRouter(prefix="/models")


def _page(
    request: Request, session: Session, form: dict[str, str], errors: dict[str, str]
) -> Response:
    models = session.exec(select(LanguageModel).order_by(col(LanguageModel.name))).all()
    names = {m.id: m.name for m in models}
    dataset_ids = {m.dataset_id for m in models if m.dataset_id}
    datasets = session.exec(select(Dataset).where(col(Dataset.id).in_(dataset_ids))).all()
    context = {
        "models": models,
        "names": names,
        "dataset_names": {d.id: d.name for d in datasets},
        "backends": BACKENDS,
        "form": form,
        "errors": errors,
    }
    return render(request, "models/list.html", context, status_code=400 if errors else 200)


@router.get("")
def models(request: Request, session: SessionDep, user: Viewer) -> Response:
    return _page(request, session, {"backend": "transformers"}, {})


@router.post("")
def register(
    request: Request,
    session: SessionDep,
    user: Author,
    name: Annotated[str, Form()] = "",
    backend: Annotated[str, Form()] = "transformers",
    path: Annotated[str, Form()] = "",
    base_url: Annotated[str, Form()] = "",
    api_key_env: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "name": name.strip(),
        "backend": backend,
        "path": path.strip(),
        "base_url": base_url.strip().rstrip("/"),
        "api_key_env": api_key_env.strip(),
        "description": description.strip()[:2000],
    }
    errors = validate_model(
        session=session, form=form, by_admin=Role(user.role).at_least(Role.ADMIN)
    )
    if errors:
        return _page(request, session, form, errors)
    register_model(session=session, form=form, user=user)
    session.commit()
    return RedirectResponse("/models", status_code=303)
