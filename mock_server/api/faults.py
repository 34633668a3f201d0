"""Request-level scenario effects: refusals, slow answers, and transport faults.

Task-level effects (a task that fails, partial failure, moderation, extra queue time) are the
service's business; these are the ones that concern the HTTP exchange itself.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import effects


class DropConnection(BaseException):
    """Raised by an endpoint to have the connection closed with no answer at all.

    A BaseException, so that Starlette's handlers (which catch Exception) let it through to
    ConnectionDropper, the outermost layer, which still holds the server's own send.
    """


async def carry_out(interruption: effects.Interruption | None) -> Response | None:
    """Carry out a request-level effect (effects.interruption says what it is): wait, then raise,
    answer instead, or return None to go on with the answer."""
    if interruption is None:
        return None
    if interruption.delay:
        await asyncio.sleep(interruption.delay)  # a slow answer is wall-clock time by nature
    if interruption.error is not None:
        raise interruption.error
    if interruption.garbage_status is not None:
        return Response(effects.MALFORMED_BODY, status_code=interruption.garbage_status, media_type="text/html")
    if interruption.drop:
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
