"""/__admin/*: control of the fake, kept apart from the faked API (moto's /moto-api)."""

from __future__ import annotations

import json
import math

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .api.http import fake, public_base_url
from .errors import DashScopeError


def _clock_state(request: Request) -> dict:
    from .service import format_time

    clock = fake(request).clock
    now = clock.now()
    return {"now": now, "service_time": format_time(now), "frozen": bool(getattr(clock, "frozen", False))}


async def clock(request: Request) -> JSONResponse:
    return JSONResponse(_clock_state(request))


async def advance_clock(request: Request) -> JSONResponse:
    try:
        body = json.loads(await request.body() or b"{}")
        seconds = body["seconds"] if isinstance(body, dict) else None
    except (ValueError, KeyError):
        seconds = None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise DashScopeError(400, "InvalidParameter", 'body must be {"seconds": N} with N a finite number >= 0')
    fake(request).clock.advance(seconds)
    return JSONResponse(_clock_state(request))


async def reset(request: Request) -> JSONResponse:
    fake(request).reset()
    return JSONResponse({"reset": True, **_clock_state(request)})


def region_base_urls(service, base: str) -> dict[str, dict[str, str]]:
    return {region: {"base_url": f"{base}/{region}/api/v1", "real_base_url": info["base_url"]}
            for region, info in service.catalog.regions.items()}


async def regions(request: Request) -> JSONResponse:
    service = fake(request)
    return JSONResponse({"default_region": service.config.default_region,
                         "regions": region_base_urls(service, public_base_url(request))})


async def keys(request: Request) -> JSONResponse:
    return JSONResponse({"keys": [{"key": k.key, "key_id": k.key_id, "account": k.account, "region": k.region}
                                  for k in fake(request).keys.all()]})


routes = [
    Route("/__admin/clock", clock, methods=["GET"]),
    Route("/__admin/clock/advance", advance_clock, methods=["POST"]),
    Route("/__admin/reset", reset, methods=["POST"]),
    Route("/__admin/regions", regions, methods=["GET"]),
    Route("/__admin/keys", keys, methods=["GET"]),
]
