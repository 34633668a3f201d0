"""/__admin/*: control of the fake, kept apart from the faked API (moto's /moto-api)."""

from __future__ import annotations

import os
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import housekeeping, parse
from .api.http import public_base_url, read_body, service_of
from .api.tasks import task_output
from .backend.tasks import format_time
from .clock import ControllableClock
from .errors import DashScopeError
from .journal import route_namer, secrets_of
from .pages import base_urls as region_base_urls
from .pages import version
from .scenarios import ScenarioError


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


def _controllable(request: Request) -> ControllableClock:
    clock = service_of(request).clock
    if not isinstance(clock, ControllableClock):
        raise DashScopeError(400, "InvalidParameter", "this fake's clock cannot be moved")
    return clock


async def freeze_clock(request: Request) -> JSONResponse:
    _controllable(request).freeze()
    return JSONResponse(_clock_state(request))


async def unfreeze_clock(request: Request) -> JSONResponse:
    """Run at wall speed again from where the clock stands (the store is kept; nothing goes back)."""
    _controllable(request).unfreeze()
    return JSONResponse(_clock_state(request))


async def reset(request: Request) -> JSONResponse:
    service_of(request).reset()
    return JSONResponse({"reset": True, **_clock_state(request)})


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


async def timing(request: Request) -> JSONResponse:
    """The task timing this fake runs with (its defaults under its --config): what the contract
    suite compares the durations of a run's tasks with."""
    return JSONResponse({"timing": service_of(request).config.timing})


async def health(request: Request) -> JSONResponse:
    service = service_of(request)
    # pid: which worker answered (serve --workers N), and store: where the state they share lives.
    return JSONResponse({"status": "ok", "profile": service.config.profile, "default_region": service.config.default_region,
                         "version": version(), "pid": os.getpid(), "store": _store_kind(service.config.store)})


def _store_kind(url: str) -> str:
    """memory, sqlite or redis: never the URL itself, which may carry a password."""
    return url.split(":", 1)[0] or "memory"


DEFAULT_TASKS_PAGE, MAX_TASKS_PAGE = 50, 500


def _query_number(request: Request, name: str, low: int, high: int) -> int | None:
    text = request.query_params.get(name)
    try:
        return None if text is None else parse.decimal(text, low=low, high=high)
    except parse.BadInput as bad:
        raise DashScopeError(400, "InvalidParameter", f"{name}: {bad}") from None


async def requests(request: Request) -> JSONResponse:
    """The request journal: GET ?endpoint=&region=&status=&limit= (the last N), oldest first; DELETE empties it."""
    service = service_of(request)
    journal = service.journal
    if request.method == "DELETE":
        journal.clear()
        return JSONResponse({"requests": [], "total": 0, "capacity": journal.capacity})
    endpoint, region = request.query_params.get("endpoint"), request.query_params.get("region")
    if endpoint is not None and endpoint not in service.catalog.endpoints:
        raise DashScopeError(400, "InvalidParameter", f"endpoint: one of {', '.join(service.catalog.endpoints)}")
    if region is not None and region not in service.catalog.regions:
        raise DashScopeError(400, "InvalidParameter", f"region: one of {', '.join(service.catalog.regions)}")
    status, limit = _query_number(request, "status", 100, 599), _query_number(request, "limit", 0, 10**9)
    name_of = route_namer(request.app.state.endpoint_of_handler)
    return JSONResponse(journal.read(name_of, secrets_of(service), endpoint=endpoint, region=region, status=status, limit=limit))


async def tasks(request: Request) -> JSONResponse:
    """Every account's tasks as the fake holds them, newest first (a caller of the API only ever
    sees its own): GET ?account=&region=&model=&status=&offset=&limit=."""
    service = service_of(request)
    query = request.query_params
    offset, limit = _query_number(request, "offset", 0, 10**9), _query_number(request, "limit", 0, MAX_TASKS_PAGE)
    page, total = service.tasks.overview(account=query.get("account"), region=query.get("region"), model=query.get("model"),
                                         status=query.get("status"), offset=offset or 0,
                                         limit=DEFAULT_TASKS_PAGE if limit is None else limit)
    base = public_base_url(request)
    return JSONResponse({"total": total, "tasks": [
        {"account": t.account, "region": t.region, "model": t.model, "endpoint": t.endpoint, "api_key_id": t.api_key_id,
         **task_output(service, t, base)} for t in page]})


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
    service.ledger.set_free_tier_only(account, data["enabled"])
    return JSONResponse({"free_tier_only": sorted(service.ledger.free_tier_only)})


routes = [
    Route("/__admin/clock", clock, methods=["GET"]),
    Route("/__admin/clock/advance", advance_clock, methods=["POST"]),
    Route("/__admin/clock/freeze", freeze_clock, methods=["POST"]),
    Route("/__admin/clock/unfreeze", unfreeze_clock, methods=["POST"]),
    Route("/__admin/health", health, methods=["GET"]),
    Route("/__admin/reset", reset, methods=["POST"]),
    Route("/__admin/regions", regions, methods=["GET"]),
    Route("/__admin/requests", requests, methods=["GET", "DELETE"]),
    Route("/__admin/keys", keys, methods=["GET"]),
    Route("/__admin/scenarios", scenarios, methods=["GET", "POST", "DELETE"]),
    Route("/__admin/scenarios/{scenario_id}", scenario, methods=["DELETE"]),
    Route("/__admin/tasks", tasks, methods=["GET"]),
    Route("/__admin/timing", timing, methods=["GET"]),
    Route("/__admin/usage", usage, methods=["GET"]),
    Route("/__admin/usage/free-tier-only", free_tier_only, methods=["POST"]),
]
