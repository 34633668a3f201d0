"""create_app(): the Starlette application of the fake, declared as data."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import admin, housekeeping
from .access import ControlGate
from .api import generation, results, tasks, uploads
from .api.faults import ConnectionDropper
from .api.http import error_reply, fake, new_request_id
from .clock import Clock
from .config import Config
from .errors import DashScopeError
from .openapi import openapi_document
from .regions import RegionRouter
from .service import FakeDashScope
from .store import Store
from .uploads import UPLOAD_PATH

log = logging.getLogger("dashscope_mock")
API = "/api/v1"


def _routes(service: FakeDashScope) -> list[Route]:
    endpoints = service.catalog.endpoints
    return [
        Route(API + endpoints["multimodal-generation"]["path"], generation.multimodal_generation, methods=["POST"]),
        Route(API + endpoints["text2image"]["path"], generation.image_synthesis("text2image"), methods=["POST"]),
        Route(API + endpoints["image2image"]["path"], generation.image_synthesis("image2image"), methods=["POST"]),
        Route(API + "/tasks/{task_id}", tasks.get_task, methods=["GET"]),
        Route(API + "/tasks/{task_id}/cancel", tasks.cancel_task, methods=["POST"]),
        Route(API + "/tasks", tasks.list_tasks, methods=["GET"]),
        Route(API + "/uploads", uploads.get_policy, methods=["GET"]),
        Route(UPLOAD_PATH, uploads.receive_upload, methods=["POST"]),
        Route("/__oss/{bucket}/{object_path:path}", results.download, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        *admin.routes,
    ]


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(fake(request).config.profile))


async def _dashscope_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DashScopeError)
    return error_reply(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # A known path with a method it does not take: 405, with the methods it does take.
        error = DashScopeError(405, "MethodNotAllowed", f"{request.method} is not allowed here", dict(exc.headers or {}))
        return error_reply(error)
    if request.url.path.startswith(API) or request.scope["path"].startswith(API):
        # The service answers an unknown path under /api/v1 as a bad URL.
        return error_reply(DashScopeError.from_catalog(fake(request).catalog, "url_error"))
    return JSONResponse({"request_id": new_request_id(), "code": "NotFound", "message": f"{request.url.path} is not served here"},
                        status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug in the fake, never bad input: still the envelope, and loudly in the log.
    log.exception("unexpected error in the fake")
    return error_reply(DashScopeError.from_catalog(fake(request).catalog, "internal_error"))


class _FakeApp(Starlette):
    def build_middleware_stack(self):
        # Outside even Starlette's ServerErrorMiddleware, which wraps `send`: dropping a
        # connection needs the server's own send (and through it, the socket).
        return ConnectionDropper(super().build_middleware_stack())


def create_app(config: Config | None = None, *, store: Store | None = None, clock: Clock | None = None,
               service: FakeDashScope | None = None) -> Starlette:
    service = service or FakeDashScope(config or Config.load(), store=store, clock=clock)
    region_urls = {name: info["base_url"] for name, info in service.catalog.regions.items()}
    app = _FakeApp(
        routes=_routes(service),
        middleware=[Middleware(RegionRouter, region_base_urls=region_urls, default_region=service.config.default_region),
                    # Inside the region router: /cn-beijing/__admin is the control API too.
                    Middleware(ControlGate, admin_token=service.config.admin_token)],
        exception_handlers={DashScopeError: _dashscope_error, HTTPException: _http_error, Exception: _unexpected},
        lifespan=housekeeping.lifespan,
    )
    app.state.fake = service
    return app
