"""The fake's dashboard: GET / in a browser (pages.py owns the route; Accept: application/json
still gets pages.front). One server-rendered page: the regions' base URLs and keys, the clock,
tasks, sync calls, scenarios and usage, with a little inline script that drives the control API
(/__admin). Reading the address is query.py, gathering what to show view.py, HTML render.py
and form.py; the style and script are dashboard.css and dashboard.js beside them."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..api.http import public_base_url, service_of
from ..journal import route_namer
from .query import read_filters
from .render import page
from .view import gather


def _policy(nonce: str) -> str:
    """Only the page's own style and script run (an escaping slip cannot become a script), its
    images (but its inline icon) and calls go to this fake only, and it cannot be framed."""
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def respond(request: Request, front: dict[str, Any]) -> HTMLResponse:
    """The dashboard for this request's address (filters, page), or DashScopeError 400 for a bad one."""
    service = service_of(request)
    filters = read_filters(service, request.query_params)
    view = gather(service, front, filters, public_base_url(request), route_namer(request.app.state.endpoint_of_handler))
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(page(view, nonce), headers={"Content-Security-Policy": _policy(nonce), "Cache-Control": "no-store",
                                                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})
