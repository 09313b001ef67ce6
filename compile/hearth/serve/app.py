"""`hearth serve`: the FastAPI host for the demo app and the model packages under dist/.

Everything runs in the browser; this server only hands out files (plus an opt-in native
fallback API, off by default). Cross-origin isolation headers are set on every response so
the page may use SharedArrayBuffer and precise timers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .. import __version__
from .catalog import package_listing, scan_packages
from .files import MAX_URL_PATH, PathTooLong, UnsafePath, file_response, resolve_served
from .guard import RequestGuard
from .headers import IsolationHeaders
from .native_api import disabled_router, native_router
from .routing import get_and_head


def create_app(
    dist: Path,
    app_dir: Path | None = None,
    native_api: bool = False,
    *,
    bound_host: str | None = None,
    allowed_hosts: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
) -> FastAPI:
    """`native_api`: mount the OpenAI-compatible native fallback endpoints (native_api.py) at /v1/.
    `bound_host`, `allowed_hosts`, `allowed_origins`: which Host and Origin headers are answered
    besides loopback names and the server's own origin (guard.py: DNS rebinding, cross-site POSTs)."""
    app = FastAPI(title="Hearth", version=__version__, docs_url=None, redoc_url=None)
    # Pure ASGI layers, not @app.middleware("http"): that one delays cancelling a streaming endpoint
    # (headers.py). The last added is the outermost: refusals get the isolation headers too.
    app.add_middleware(
        RequestGuard, bound_host=bound_host, allowed_hosts=tuple(allowed_hosts), allowed_origins=tuple(allowed_origins)
    )
    app.add_middleware(IsolationHeaders)

    @get_and_head(app, "/healthz")
    def health() -> dict:
        good, broken = scan_packages(dist)
        return {
            "status": "ok",
            "version": __version__,
            "packages": len(good),
            # Left out of /models/ and /v1/models (and logged); listed here so they are not invisible.
            "broken_packages": [{"path": b.rel, "error": b.error} for b in broken],
            "app": app_dir is not None,
            "native_api": native_api,
        }

    # Before the app's catch-all route, so /v1/ never falls through to the HTML shell.
    app.include_router(native_router(dist) if native_api else disabled_router())

    @get_and_head(app, "/models/")
    def models() -> JSONResponse:
        return JSONResponse(package_listing(dist), headers={"Cache-Control": "no-cache"})

    def serve_from(root: Path, path: str, request: Request, spa_index: bool = False, hidden: bool = True) -> Response:
        try:
            file = resolve_served(root, path, hidden=hidden)
            if file is None and spa_index and "." not in PurePosixPath(path).name:
                file = resolve_served(root, "index.html")  # client-side routes fall back to the app shell
        except PathTooLong:
            return PlainTextResponse(f"refused: the path is longer than {MAX_URL_PATH} characters", 414)
        except UnsafePath:
            return PlainTextResponse("refused: path must be a plain relative path inside the served folder", 400)
        if file is None:
            return PlainTextResponse(f"not found: {path}", 404)
        return file_response(request, file, root.resolve())

    @get_and_head(app, "/models/{path:anypath}")
    def model_file(path: str, request: Request) -> Response:
        return serve_from(dist, path, request, hidden=False)  # .<quant>.tmp-* folders are unfinished builds

    @get_and_head(app, "/{path:anypath}")
    def app_file(path: str, request: Request) -> Response:
        if app_dir is None:
            return PlainTextResponse("no web app is being served (build demo_rag first)", 404)
        return serve_from(app_dir, path, request, spa_index=True)

    return app
