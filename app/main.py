"""The FastAPI application: routers, static files, sign-in redirects and error pages."""

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from app.auth import CSRF_COOKIE, NotSignedIn, Viewer, verify_csrf
from app.routes import (
    admin,
    auth,
    constitutions,
    datasets,
    feedback,
    generation,
    jobs,
    models,
    prompt_sets,
    run_stats,
    traces,
    training,
    versions,
)
from app.settings import PROJECT_ROOT, get_settings
from app.templating import is_htmx, render


def create_app() -> FastAPI:
    get_settings()  # refuse unsafe settings at start, not at the first request
    app = FastAPI(
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
        prompt_sets,
        models,
        generation,
        jobs,
        run_stats,
        traces,
        datasets,
        training,
        feedback,
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
        seed = getattr(request.state, "new_csrf_seed", None)
        if seed is not None and CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE,
                seed,
                httponly=True,
                samesite="lax",
                secure=get_settings().SESSION_COOKIE_SECURE,
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

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        if "text/html" in request.headers.get("accept", "") and not is_htmx(request):
            return render(
                request,
                "error.html",
                {"status": exc.status_code, "detail": exc.detail},
                status_code=exc.status_code,
            )
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    return app
