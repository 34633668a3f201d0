"""create_app(): the Starlette application of the fake, declared as data."""

from __future__ import annotations

import logging
from typing import Any

from dashscope_schemas import Endpoint
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from . import admin, housekeeping, pages
from .access import ControlGate
from .api import generation, results, tasks, uploads
from .api.faults import ConnectionDropper
from .api.http import error_reply, public_base_url, service_of
from .api.routing import CatalogRoutes
from .clock import Clock
from .config import Config
from .errors import DashScopeError
from .journal import RequestJournal
from .openapi import openapi_document
from .regions import RegionRouter
from .service import FakeDashScope
from .store import Store

log = logging.getLogger("dashscope_mock")
API = "/api/v1"


# The handler of each route of the catalog's plan that is not a generation endpoint (those are
# handled by their mode, generation.handler_for).
_HANDLERS = {"task-query": tasks.get_task, "task-cancel": tasks.cancel_task, "task-list": tasks.list_tasks,
             "upload-policy": uploads.get_policy, "upload": uploads.receive_upload, "download": results.download}


def _catalog_routes(service: FakeDashScope) -> tuple[list[Route], dict[Any, Endpoint]]:
    """The catalog's endpoints as routes; and which endpoint each handler serves (what the
    route's answers look like depends on it)."""
    routes, endpoint_of_handler = [], {}
    # Polls first: the router tries routes in order, and a client polls a task many times for each
    # one it creates. No two of the catalog's routes match the same method and path, so order
    # changes nothing else.
    for endpoint in sorted(service.catalog.endpoints.values(), key=lambda e: e.name != "task-query"):
        handler = generation.handler_for(endpoint) if endpoint.generates else _HANDLERS[endpoint.name]
        routes.append(Route((API if endpoint.under_api else "") + endpoint.path, handler, methods=[endpoint.method]))
        endpoint_of_handler[handler] = endpoint
    return routes, endpoint_of_handler


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(service_of(request).config.profile))


async def _dashscope_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DashScopeError)
    return error_reply(exc, request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    under_api = request.url.path.startswith(API) or request.scope["path"].startswith(API)
    if exc.status_code == 405:
        if under_api:  # the service's words for a wrong method on an API path (observation wrong-method)
            wire = service_of(request).catalog.error("method_not_supported")
            method = request.method if request.method.isalpha() else "?"
            return error_reply(DashScopeError(wire["status"], wire["code"], wire["message"].format(method=method[:16])), request)
        # The fake's own hosts: 405, with the methods the path does take.
        error = DashScopeError(405, "MethodNotAllowed", f"{request.method[:16]} is not allowed here", dict(exc.headers or {}))
        return error_reply(error)
    if under_api:
        # The service answers an unknown path under /api/v1 as a bad URL.
        return error_reply(DashScopeError.from_catalog(service_of(request).catalog, "url_error"), request)
    # Elsewhere (/api/v2, /v1, /cn-shanghai/api/v1 ...): say where the API is.
    service = service_of(request)
    base = public_base_url(request)
    where = ", ".join(urls["base_url"] for urls in pages.base_urls(service, base).values())
    message = (f"{request.url.path[:200]} is not served here; the API's base URLs are {where} "
               f"(plain {base}{API} is {service.config.default_region})")
    return error_reply(DashScopeError(exc.status_code, "NotFound", message), request)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug in the fake, never bad input: still the envelope, and loudly in the log.
    log.exception("unexpected error in the fake")
    return error_reply(DashScopeError.from_catalog(service_of(request).catalog, "internal_error"), request)


# What the request handlers raise that is answered, not a bug.
_ANSWERED = {DashScopeError: _dashscope_error, HTTPException: _http_error}


class _FakeApp(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside even Starlette's ServerErrorMiddleware, which wraps `send`: dropping a
        # connection needs the server's own send (and through it, the socket).
        return ConnectionDropper(super().build_middleware_stack())


def create_app(config: Config | None = None, *, store: Store | None = None, clock: Clock | None = None,
               service: FakeDashScope | None = None) -> Starlette:
    service = service or FakeDashScope(config or Config.load(), store=store, clock=clock)
    region_urls = {name: info["base_url"] for name, info in service.catalog.regions.items()}
    catalog_routes, endpoint_of_handler = _catalog_routes(service)
    app = _FakeApp(
        # The catalog's routes first (CatalogRoutes serves them as declared; the router answers
        # their other methods), then what is the fake's own (OpenAPI, control, pages).
        routes=[*catalog_routes, Route("/openapi.json", _openapi, methods=["GET"]), *admin.routes, *pages.routes],
        middleware=[Middleware(RegionRouter, region_base_urls=region_urls, default_region=service.config.default_region),
                    # Inside the region router: /cn-beijing/__admin is the control API too.
                    Middleware(ControlGate, admin_token=service.config.admin_token),
                    # Inside both: it sees the region and the path below it, and no refused control call.
                    Middleware(RequestJournal, service=service),
                    # Innermost: the catalog's routes by a dict; the rest on to Starlette's router.
                    Middleware(CatalogRoutes, routes=catalog_routes, handlers=_ANSWERED)],
        # Exception: answered by Starlette's outermost ServerErrorMiddleware, whatever layer raised it.
        exception_handlers={**_ANSWERED, Exception: _unexpected},
        lifespan=housekeeping.lifespan,
    )
    app.state.service = service
    app.state.endpoint_of_handler = endpoint_of_handler
    return app
