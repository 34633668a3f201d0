"""GET /: the fake's front page, for this machine (access.ControlGate): where each region's API
is, and the fake's own routes. The dashboard (dashboard/) for a browser, JSON for
`Accept: application/json`."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import dashboard
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


async def front_page(request: Request) -> Response:
    data = front(service_of(request), public_base_url(request))
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return JSONResponse(data)
    return dashboard.respond(request, data)


routes = [Route("/", front_page, methods=["GET"])]
