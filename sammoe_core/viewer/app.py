"""The viewer's HTTP endpoints: a thin FastAPI app over :class:`~sammoe_core.viewer.state.ViewerState`.

Safety rules, all in this module: with a token every request must carry it (``?token=`` once,
then a cookie, or the ``X-Sammoe-Token`` header); without one the ``Host`` header must name this
machine (no DNS rebinding); requests that change anything need the ``X-Sammoe`` header (a page of
another origin cannot send it without a CORS preflight, which is never granted); request bodies
are limited to :data:`MAX_BODY_BYTES`; every error is JSON ``{"error": "<one line>"}`` with a 4xx
status (5xx only for a bug, without its traceback). No path from a request is ever opened.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sammoe_core.errors import SammoeError
from sammoe_core.viewer.assets import INDEX_HTML, PAGE_FILES
from sammoe_core.viewer.state import ViewerState

MAX_BODY_BYTES = 64 * 1024
TOKEN_COOKIE = "sammoe_token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "testserver"}
log = logging.getLogger("sammoe.viewer")

Coordinate = Field(min_length=3, max_length=3)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewTarget(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    colour: str | None = None


class TargetChange(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    colour: str | None = None


class Click(_Body):
    position: list[float] = Coordinate
    positive: bool = True
    space: Literal["voxel", "mm"] = "voxel"


class Box(_Body):
    lower: list[float] = Coordinate
    upper: list[float] = Coordinate
    space: Literal["voxel", "mm"] = "voxel"


class PolicyChange(_Body):
    policy: str = Field(min_length=1, max_length=100)
    tau: float | None = Field(default=None, ge=0.0, le=1.0)
    expert: str | None = Field(default=None, min_length=1, max_length=100)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


class _Guard:
    """ASGI middleware: token or local Host, the X-Sammoe header on changes, the body size limit."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        problem = self._refusal(request)
        if problem is not None:
            await _error(problem[0], problem[1])(scope, receive, send)
            return
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")(scope, receive, send)

    def _refusal(self, request: Request) -> tuple[int, str] | None:
        if self.token is not None:
            given = (
                request.query_params.get("token")
                or request.headers.get("x-sammoe-token")
                or request.cookies.get(TOKEN_COOKIE)
                or ""
            )
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 403, "a token is required: open the URL with ?token=... that `sammoe view` printed"
        else:
            host = _host_name(request.headers.get("host", ""))
            if host not in LOCAL_HOSTS:
                return 403, f"host {host!r} refused: this viewer serves only this machine (127.0.0.1)"
        if request.method not in ("GET", "HEAD") and request.headers.get("x-sammoe") != "1":
            return 403, "changes need the X-Sammoe: 1 header (sent by the viewer's page)"
        return None


class _TooLarge(Exception):
    pass


def _host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:8000`` -> ``[::1]``)."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0]


def create_app(state: ViewerState, token: str | None = None) -> FastAPI:
    """The viewer's app for one opened volume; ``token``: required on every request (remote use)."""
    app = FastAPI(title="sammoe view", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_Guard, token=token)

    @app.exception_handler(SammoeError)
    async def refused(request: Request, e: SammoeError) -> JSONResponse:
        return _error(400, str(e) or type(e).__name__)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "malformed request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error(422, f"{where}: {first['msg']}" if where else str(first["msg"]))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("viewer request %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}); the server's log has the details")

    @app.get("/")
    def index(request: Request) -> Response:
        response = FileResponse(INDEX_HTML, media_type="text/html")
        if token is not None:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/static/{name}")
    def page_file(name: str) -> Response:
        if name not in PAGE_FILES:
            return _error(404, f"no page file {name!r}")
        path, media_type = PAGE_FILES[name]
        if not path.is_file():
            return _error(404, f"{name} is not installed (see docs/view.md)")
        return FileResponse(path, media_type=media_type)

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {**state.info(), **state.snapshot()}

    @app.get("/api/volume.nii.gz")
    def volume() -> Response:
        return Response(state.volume_file(), media_type="application/gzip")

    @app.get("/api/labels.nii.gz")
    def labels_file() -> Response:
        return Response(state.labels_file(), media_type="application/gzip", headers={"Cache-Control": "no-store"})

    @app.get("/api/labels")
    def labels() -> Response:
        version, body = state.label_bytes()
        headers = {"Content-Encoding": "gzip", "X-Labels-Version": str(version), "Cache-Control": "no-store"}
        return Response(body, media_type="application/octet-stream", headers=headers)

    @app.get("/api/targets")
    def targets() -> dict[str, Any]:
        return state.snapshot()

    @app.get("/api/prompts")
    def prompts() -> dict[str, Any]:
        return state.session.prompts()

    @app.post("/api/targets")
    def add_target(body: NewTarget) -> dict[str, Any]:
        return state.add_target(body.name, body.colour)

    @app.patch("/api/targets/{name}")
    def change_target(name: str, body: TargetChange) -> dict[str, Any]:
        return state.change_target(name, body.name, body.colour)

    @app.delete("/api/targets/{name}")
    def remove_target(name: str) -> dict[str, Any]:
        return state.remove_target(name)

    @app.post("/api/targets/{name}/clicks")
    def add_click(name: str, body: Click) -> dict[str, Any]:
        action = "click" if body.positive else "negative click"
        return state.edit(action, name, lambda: state.session.add_click(name, body.position, body.positive, body.space))

    @app.post("/api/targets/{name}/box")
    def set_box(name: str, body: Box) -> dict[str, Any]:
        return state.edit("box", name, lambda: state.session.set_box(name, body.lower, body.upper, body.space))

    @app.post("/api/targets/{name}/undo")
    def undo(name: str) -> dict[str, Any]:
        return state.edit("undo", name, lambda: state.session.undo(name))

    @app.post("/api/targets/{name}/redo")
    def redo(name: str) -> dict[str, Any]:
        return state.edit("redo", name, lambda: state.session.redo(name))

    @app.post("/api/targets/{name}/clear")
    def clear(name: str) -> dict[str, Any]:
        return state.edit("clear", name, lambda: state.session.clear(name))

    @app.put("/api/policy")
    def set_policy(body: PolicyChange) -> dict[str, Any]:
        return state.set_policy(body.policy, body.tau, body.expert)

    @app.post("/api/save")
    def save() -> dict[str, Any]:
        return state.save()

    return app
