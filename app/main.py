"""The FastAPI application: routers, static files, sign-in redirects and error pages."""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from app.auth import CSRF_COOKIE, NotSignedIn, PasswordChangeRequired, Viewer, verify_csrf
from app.headers import SecurityHeadersMiddleware
from app.routes import (
    admin,
    auth,
    constitution_ab,
    constitutions,
    datasets,
    eval_labels,
    evaluations,
    feedback,
    few_shots,
    generation,
    jobs,
    judge_checks,
    models,
    principles,
    prompt_sets,
    rl,
    run_stats,
    traces,
    training,
    versions,
)
from app.settings import PROJECT_ROOT, get_settings
from app.templating import is_htmx, render


class WorkbenchApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware too (add_middleware puts it inside), so an
        # unexpected error's 500 carries the security headers like every other response.
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def create_app() -> FastAPI:
    get_settings()  # refuse unsafe settings at start, not at the first request
    app = WorkbenchApp(
        title="CAI workbench",
        dependencies=[Depends(verify_csrf)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static")
    for module in (
        auth,
        admin,
        constitutions,
        versions,
        principles,
        few_shots,
        prompt_sets,
        models,
        generation,
        jobs,
        run_stats,
        traces,
        datasets,
        training,
        rl,
        feedback,
        constitution_ab,
        evaluations,
        eval_labels,
        judge_checks,
    ):
        app.include_router(module.router)

    @app.get("/")
    def home(user: Viewer) -> Response:
        return RedirectResponse("/constitutions", status_code=303)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def set_csrf_cookie(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        # The pre-session value behind the sign-in form's token; sign-in and sign-out drop it.
        seed = getattr(request.state, "new_csrf_seed", None)
        if seed is not None and CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE,
                seed,
                httponly=True,
                samesite="lax",
                secure=get_settings().session_cookie_secure,
            )
        return response

    @app.exception_handler(NotSignedIn)
    def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        target = "/login?next=" + quote(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method != "GET":
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    def password_change_required(request: Request, exc: PasswordChangeRequired) -> Response:
        if is_htmx(request):
            return Response(status_code=403, headers={"HX-Redirect": "/account/password"})
        return RedirectResponse("/account/password", status_code=303)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        return _error_response(request, exc.status_code, exc.detail, headers=exc.headers)

    @app.exception_handler(500)
    def server_error(request: Request, exc: Exception) -> Response:
        # Says nothing of the error itself (that goes to the log); the page keeps the layout.
        return _error_response(request, 500, "Something went wrong on our side; it is logged.")

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """A malformed or out-of-range id or number: a 422 that says which field, never a 500."""
        problems = field_problems(exc)
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return _error_response(request, 422, detail, extra={"errors": problems})

    return app


def _error_response(
    request: Request,
    status_code: int,
    detail: Any,
    *,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """The error page for a page request; JSON for htmx and other clients."""
    if status_code in {204, 304}:  # these carry no body
        return Response(status_code=status_code, headers=headers)
    if "text/html" in request.headers.get("accept", "") and not is_htmx(request):
        return render(
            request,
            "error.html",
            {"status": status_code, "detail": detail},
            status_code=status_code,
        )
    return JSONResponse(
        {"detail": detail, **(extra or {})}, status_code=status_code, headers=headers
    )


# Where a parameter came from, which a person does not need to read.
_SOURCES = {"path", "query", "body", "header", "cookie"}


def field_problems(exc: RequestValidationError) -> list[dict[str, str]]:
    """Each invalid field's name and what is wrong with it (the value is not repeated)."""
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part not in _SOURCES]
        problems.append(
            {"field": ".".join(location) or "request", "message": str(error.get("msg", ""))}
        )
    return problems
