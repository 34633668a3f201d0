"""Who may use the fake's control routes: this machine, or whoever holds the admin token.

The faked API answers anybody (that is its job), but /__admin shows every key in full and can
reset the store, move the clock and inject faults. So by default it answers loopback callers
only (what a test suite or a developer on this machine is); `serve --admin-token TOKEN` opens
it to callers sending `Authorization: Bearer TOKEN` as well. Everybody else gets 403 with the
DashScope error envelope. The caller is the TCP peer the server saw (uvicorn trusts
X-Forwarded-For only from its --forwarded-allow-ips, loopback by default, so a proxy on this
machine passes on the real remote address rather than making everybody local).
"""

from __future__ import annotations

import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from .ids import new_id
from .parse import same_secret

CONTROL_PREFIXES = ("/__admin",)
CONTROL_PATHS = ("/",)  # the fake's front page (pages.py)
_LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str | None) -> bool:
    """A loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or name; None is no network peer at all
    (a Unix socket, an in-process client)."""
    if host is None:
        return True
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class ControlGate:
    """ASGI middleware: the control routes for loopback callers and admin-token holders only."""

    def __init__(self, app: ASGIApp, admin_token: str | None = None, prefixes: tuple[str, ...] = CONTROL_PREFIXES,
                 paths: tuple[str, ...] = CONTROL_PATHS):
        self.app = app
        self.admin_token = admin_token
        self.prefixes = prefixes
        self.paths = paths

    def allows(self, scope: Scope) -> bool:
        client = scope.get("client")
        if is_loopback(client[0] if client else None):
            return True
        token = _bearer(scope)
        return bool(self.admin_token and token and same_secret(self.admin_token, token))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"].startswith(self.prefixes) or scope["path"] in self.paths) \
                and not self.allows(scope):
            body = json.dumps({"request_id": new_id(), "code": "AccessDenied",
                               "message": "The control API answers this machine only (or callers with the admin token)."}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
