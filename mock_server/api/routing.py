"""The catalog's routes, found by a dict instead of Starlette's walk through its route list.

Every API request passes here, and most are the same two (a create, then its polls), so the
hot path is short: one dict lookup for a path without parameters, one pattern for each route
with them (/tasks/{task_id} first), then the handler is called and its answer sent directly,
without the router's walk, the exception middleware and the per-route exception wrapper
Starlette puts around every handler (together about a tenth of a request's cost).

What is not one of the catalog's routes exactly as declared (another method, HEAD, a path
under a root_path, the fake's own pages and control API, unknown paths) goes on to Starlette's
router unchanged, which answers 404 and 405 in the service's words (app._http_error).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class CatalogRoutes:
    """ASGI middleware, the innermost: serves the routes given (the catalog's endpoints), and
    passes every other request to `app` (Starlette's exception middleware and router).
    `handlers`: the app's exception handlers, which answer what a handler raises as Starlette's
    exception middleware would (the most specific class first); what none handles goes up."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route], handlers: Mapping[type[Exception], ExceptionHandler]):
        self.app = app
        self.handlers = handlers
        self.exact: dict[tuple[str, str], Route] = {}
        self.patterned: list[tuple[str, Route]] = []  # in the order given: the first that matches serves
        for route in routes:
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue  # Starlette's own (a GET without its body): left to its router
                if route.param_convertors:
                    self.patterned.append((method, route))
                else:
                    self.exact[(method, route.path)] = route

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, Any]] | None:
        route = self.exact.get((method, path))
        if route is not None:
            return route, {}
        for route_method, route in self.patterned:
            if route_method == method and (found := route.path_regex.match(path)) is not None:
                return route, {name: route.param_convertors[name].convert(value) for name, value in found.groupdict().items()}
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope["method"], scope["path"]) if scope["type"] == "http" and not scope.get("root_path") else None
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, path_params = matched
        # What Starlette's router puts in the scope: the journal names the route by its endpoint.
        scope["endpoint"], scope["path_params"] = route.endpoint, path_params
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as error:
            handler = next((self.handlers[kind] for kind in type(error).__mro__ if kind in self.handlers), None)
            if handler is None:
                raise  # up to Starlette's ServerErrorMiddleware, as from its router
            response = await handler(request, error)
        await response(scope, receive, send)
