"""Jinja2 with named blocks: a page and its htmx fragments live in one template."""

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2_fragments.fastapi import Jinja2Blocks

from app.auth import csrf_token
from app.evaluation_prefill import evaluate_href
from app.models import Role
from app.settings import PROJECT_ROOT
from app.timeutil import format_duration

templates = Jinja2Blocks(directory=str(PROJECT_ROOT / "templates"))
templates.env.globals["duration"] = format_duration
templates.env.globals["evaluate_href"] = evaluate_href


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> Response:
    user = getattr(request.state, "user", None)
    full_context = {
        "user": user,
        "csrf_token": csrf_token(request),
        "can": (lambda role: user is not None and Role(user.role).at_least(Role(role))),
        **(context or {}),
    }
    return templates.TemplateResponse(
        request, name, full_context, block_name=block, status_code=status_code
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
