"""/__admin/*: control of the fake, kept apart from the faked API (moto's /moto-api)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import housekeeping, parse
from .api.http import public_base_url, read_body, service_of
from .backend.tasks import format_time
from .clock import ControllableClock
from .errors import DashScopeError
from .scenarios import ScenarioError
from .service import FakeDashScope


def _clock_state(request: Request) -> dict[str, Any]:
    clock = service_of(request).clock
    now = clock.now()
    return {"now": now, "service_time": format_time(now), "frozen": bool(getattr(clock, "frozen", False))}


async def clock(request: Request) -> JSONResponse:
    return JSONResponse(_clock_state(request))


async def advance_clock(request: Request) -> JSONResponse:
    body = await _json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise DashScopeError(400, "InvalidParameter", 'body must be {"seconds": N} with N a finite number >= 0')
    service = service_of(request)
    if not isinstance(service.clock, ControllableClock):
        raise DashScopeError(400, "InvalidParameter", "this fake's clock cannot be moved")
    try:
        service.clock.advance(seconds)
    except ValueError as exc:  # past the clock's bound: refused, the clock unchanged
        raise DashScopeError(400, "InvalidParameter", f"seconds: {exc}") from None
    # What the jump expired or finished is swept now, in batches that let other requests in.
    await housekeeping.sweep_all(service)
    return JSONResponse(_clock_state(request))


async def reset(request: Request) -> JSONResponse:
    service_of(request).reset()
    return JSONResponse({"reset": True, **_clock_state(request)})


def region_base_urls(service: FakeDashScope, base: str) -> dict[str, dict[str, str]]:
    return {region: {"base_url": f"{base}/{region}/api/v1", "real_base_url": info["base_url"]}
            for region, info in service.catalog.regions.items()}


async def regions(request: Request) -> JSONResponse:
    service = service_of(request)
    return JSONResponse({"default_region": service.config.default_region,
                         "regions": region_base_urls(service, public_base_url(request))})


async def keys(request: Request) -> JSONResponse:
    return JSONResponse({"keys": [{"key": k.key, "key_id": k.key_id, "account": k.account, "region": k.region}
                                  for k in service_of(request).keys.all()]})


ADMIN_BODY_LIMIT = 1024 * 1024


async def _json(request: Request) -> Any:
    """An admin body through the same reader and parser as the API's (an empty body is {})."""
    raw = await read_body(request, ADMIN_BODY_LIMIT, service_of(request).config.read_timeout)
    try:
        return parse.json_document(raw) if raw.strip() else {}
    except parse.BadInput as bad:
        raise DashScopeError(400, "InvalidParameter", f"body: {bad}") from None


async def scenarios(request: Request) -> JSONResponse:
    book = service_of(request).scenarios
    if request.method == "GET":
        return JSONResponse({"scenarios": [s.to_dict() for s in book.all()]})
    if request.method == "DELETE":
        book.clear()
        return JSONResponse({"scenarios": []})
    data = await _json(request)
    try:
        added = [book.add(entry) for entry in (data if isinstance(data, list) else [data])]
    except ScenarioError as exc:
        raise DashScopeError(400, "InvalidParameter", f"scenario: {exc}") from None
    return JSONResponse(added[0].to_dict() if not isinstance(data, list) else {"scenarios": [s.to_dict() for s in added]})


async def scenario(request: Request) -> JSONResponse:
    scenario_id = request.path_params["scenario_id"]
    if not service_of(request).scenarios.remove(scenario_id):
        raise DashScopeError(404, "NotFound", f"no scenario {scenario_id!r}")
    return JSONResponse({"deleted": scenario_id})


async def usage(request: Request) -> JSONResponse:
    service = service_of(request)
    return JSONResponse({"usage": service.usage(), "free_tier_only": sorted(service.ledger.free_tier_only)})


async def free_tier_only(request: Request) -> JSONResponse:
    """{"account": "demo-account-a", "enabled": true}: refuse this account once a free quota is spent."""
    service = service_of(request)
    data = await _json(request)
    accounts = {k.account for k in service.keys.all()}
    account = data.get("account") if isinstance(data, dict) else None
    if not isinstance(account, str) or account not in accounts or not isinstance(data.get("enabled"), bool):
        raise DashScopeError(400, "InvalidParameter", f'body must be {{"account": one of {sorted(accounts)}, "enabled": true|false}}')
    (service.ledger.free_tier_only.add if data["enabled"] else service.ledger.free_tier_only.discard)(account)
    return JSONResponse({"free_tier_only": sorted(service.ledger.free_tier_only)})


routes = [
    Route("/__admin/clock", clock, methods=["GET"]),
    Route("/__admin/clock/advance", advance_clock, methods=["POST"]),
    Route("/__admin/reset", reset, methods=["POST"]),
    Route("/__admin/regions", regions, methods=["GET"]),
    Route("/__admin/keys", keys, methods=["GET"]),
    Route("/__admin/scenarios", scenarios, methods=["GET", "POST", "DELETE"]),
    Route("/__admin/scenarios/{scenario_id}", scenario, methods=["DELETE"]),
    Route("/__admin/usage", usage, methods=["GET"]),
    Route("/__admin/usage/free-tier-only", free_tier_only, methods=["POST"]),
]
