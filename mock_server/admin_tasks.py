"""GET /__admin/tasks: every account's tasks as the fake holds them, newest first, for the admin
client, the pytest plugin and the dashboard (a caller of the API only ever sees its own)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import parse
from .api.http import public_base_url, service_of
from .api.tasks import task_output
from .errors import DashScopeError

MAX_LIMIT = 500


def _number(request: Request, name: str, default: int, maximum: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        return parse.decimal(text, high=maximum)
    except parse.BadInput as bad:
        raise DashScopeError(400, "InvalidParameter", f"{name}: {bad}") from None


async def tasks(request: Request) -> JSONResponse:
    service = service_of(request)
    query = request.query_params
    page, total = service.tasks.overview(account=query.get("account"), region=query.get("region"), model=query.get("model"),
                                         status=query.get("status"), offset=_number(request, "offset", 0, 10**9),
                                         limit=_number(request, "limit", 50, MAX_LIMIT))
    base = public_base_url(request)
    return JSONResponse({"total": total, "tasks": [
        {"account": t.account, "region": t.region, "model": t.model, "endpoint": t.endpoint, "api_key_id": t.api_key_id,
         **task_output(service, t, base)} for t in page]})


routes = [Route("/__admin/tasks", tasks, methods=["GET"])]
