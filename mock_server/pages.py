"""GET /: the fake's front page, for this machine (access.ControlGate): where each region's API
is, and the fake's own routes. HTML for a browser, JSON for `Accept: application/json`."""

from __future__ import annotations

import html
from importlib import metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .api.http import public_base_url, service_of
from .service import FakeDashScope

DISTRIBUTION = "dashscope-image-kit"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def base_urls(service: FakeDashScope, base: str) -> dict[str, dict[str, str]]:
    """Each region's base URL on this fake, and the real one it stands for."""
    return {region: {"base_url": f"{base}/{region}/api/v1", "real_base_url": info["base_url"]}
            for region, info in service.catalog.regions.items()}


def front(service: FakeDashScope, base: str) -> dict[str, Any]:
    return {"service": "dashscope-mock", "version": version(), "profile": service.config.profile,
            "default_region": service.config.default_region, "regions": base_urls(service, base),
            "openapi": f"{base}/openapi.json", "admin": f"{base}/__admin"}


_LINKS = ("health", "requests", "scenarios", "clock", "usage", "keys")


def _html(data: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{e(region)}{' (default; also plain /api/v1)' if region == data['default_region'] else ''}</td>"
                   f"<td><code>{e(urls['base_url'])}</code></td><td>{e(urls['real_base_url'])}</td></tr>"
                   for region, urls in data["regions"].items())
    links = " &middot; ".join(f"<a href=\"{e(data['admin'])}/{name}\">{name}</a>" for name in _LINKS)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>dashscope-mock</title></head><body>"
            f"<h1>dashscope-mock {e(data['version'])}</h1><p>Profile <b>{e(data['profile'])}</b>. "
            f"Give the SDK a region's base URL (<code>DASHSCOPE_HTTP_BASE_URL</code>) and a key of that region.</p>"
            f"<table><tr><th>region</th><th>base URL</th><th>stands for</th></tr>{rows}</table>"
            f"<p><a href=\"{e(data['openapi'])}\">OpenAPI</a> &middot; control: {links}</p></body></html>")


async def front_page(request: Request) -> Response:
    data = front(service_of(request), public_base_url(request))
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return JSONResponse(data)
    return HTMLResponse(_html(data))


routes = [Route("/", front_page, methods=["GET"])]
