from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, func, select

from app.auth import Admin
from app.ids import PageNumber, PositiveId
from app.models import AuditEvent, Role, User
from app.session_dep import SessionDep
from app.templating import render
from app.users import change_role, create_user, reset_password, usernames, validate_new_user

router = APIRouter(prefix="/admin")


def _users_page(request: Request, session: SessionDep, **context: object) -> Response:
    users = session.exec(select(User).order_by(col(User.username))).all()
    status = 400 if context.get("errors") else 200
    return render(
        request,
        "admin/users.html",
        {"users": users, "roles": list(Role), **context},
        status_code=status,
    )


@router.get("/users")
def users(request: Request, session: SessionDep, admin: Admin) -> Response:
    return _users_page(request, session, form={})


@router.post("/users")
def add_user(
    request: Request,
    session: SessionDep,
    admin: Admin,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = Role.VIEWER.value,
) -> Response:
    username = username.strip()
    errors = validate_new_user(session=session, username=username, password=password, role=role)
    if errors:
        return _users_page(
            request, session, errors=errors, form={"username": username, "role": role}
        )
    create_user(session=session, username=username, password=password, role=Role(role), actor=admin)
    session.commit()
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}")
def update_user(
    request: Request,
    session: SessionDep,
    admin: Admin,
    user_id: PositiveId,
    role: Annotated[str, Form()],
    is_active: Annotated[bool, Form()] = False,
) -> Response:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    if role not in {r.value for r in Role}:
        raise HTTPException(400, f"unknown role '{role}'")
    if user.id == admin.id and (role != Role.ADMIN or not is_active):
        # Otherwise the last admin can lock everyone out of the admin pages.
        return _users_page(
            request, session, form={}, errors={"self": "You cannot demote or disable yourself."}
        )
    change_role(session=session, user=user, role=Role(role), is_active=is_active, actor=admin)
    session.commit()
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/reset-password")
def reset_user_password(
    request: Request, session: SessionDep, admin: Admin, user_id: PositiveId
) -> Response:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    if user.id == admin.id:
        return _users_page(
            request,
            session,
            form={},
            errors={"self": "Change your own password under Account, not here."},
        )
    one_time = reset_password(session=session, user=user, actor=admin)
    session.commit()
    # Shown on this answer only: never stored in clear, put in a URL or cached.
    response = _users_page(
        request, session, form={}, reset={"username": user.username, "password": one_time}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/audit")
def audit(request: Request, session: SessionDep, admin: Admin, page: PageNumber = 1) -> Response:
    per_page = 50
    total = session.exec(select(func.count()).select_from(AuditEvent)).one()
    events = session.exec(
        select(AuditEvent)
        .order_by(col(AuditEvent.id).desc())
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    ).all()
    names = usernames(session=session)
    return render(
        request,
        "admin/audit.html",
        {
            "events": events,
            "names": names,
            "page": page,
            "pages": max(1, -(-total // per_page)),
            "total": total,
        },
    )
