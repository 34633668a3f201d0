"""Request-level scenario effects: refusals, slow answers, and transport faults.

Task-level effects (a task that fails, partial failure, moderation, extra queue time) are the
service's business; these are the ones that concern the HTTP exchange itself.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import DashScopeError
from ..scenarios import Scenario
from ..service import FakeDashScope

MALFORMED_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream answered garbage{"


class DropConnection(BaseException):
    """Raised by an endpoint to have the connection closed with no answer at all.

    A BaseException, so that Starlette's handlers (which catch Exception) let it through to
    ConnectionDropper, the outermost layer, which still holds the server's own send.
    """


async def request_effect(service: FakeDashScope, scenario: Scenario | None) -> Response | None:
    """Apply a scenario's request-level effect: raise, answer instead, or return None to go on."""
    if scenario is None:
        return None
    effect = scenario.effect
    if effect.get("response_seconds"):
        await asyncio.sleep(effect["response_seconds"])  # a slow answer is wall-clock time by nature
    kind = effect["type"]
    if kind == "reject":
        raise service.error_for(effect, "internal_error", 500)
    if kind == "unavailable":
        wire = service.catalog.error("service_unavailable")
        raise DashScopeError(effect.get("status", 503), wire["code"], wire["message"])
    if kind == "malformed_body":
        return Response(MALFORMED_BODY, status_code=effect.get("status", 200), media_type="text/html")
    if kind == "drop_connection":
        raise DropConnection()
    return None


class ConnectionDropper:
    """Outermost ASGI layer: turns DropConnection into a closed socket (under uvicorn) or, where
    there is no socket (an in-process ASGI client), into a transport error the client raises."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except DropConnection:
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is None:
                raise ConnectionAbortedError("dashscope-mock dropped the connection (scenario)") from None
            transport.abort()  # uvicorn's protocol: no bytes of any answer reach the client
