"""What every endpoint of the faked API does the same way: request ids, keys, bodies, replies."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..accounts import ApiKey
from ..errors import DashScopeError, invalid_parameter
from ..scenarios import SCENARIO_HEADER, Scenario
from ..service import FakeDashScope


def fake(request: Request) -> FakeDashScope:
    return request.app.state.fake


def region_of(request: Request) -> str:
    return request.scope["state"]["region"]


def new_request_id() -> str:
    return str(uuid.uuid4())


def reply(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def authenticate(request: Request) -> ApiKey:
    return fake(request).authenticate(request.headers.get("authorization"), region_of(request))


def scenario_for(request: Request, endpoint: str, key: ApiKey, *, model: str | None = None,
                 prompt: str | None = None) -> Scenario | None:
    """The scenario (if any) this request meets; it counts as applied."""
    facts = {"endpoint": endpoint, "model": model, "region": region_of(request), "api_key": key.key, "prompt": prompt}
    return fake(request).scenario_for(facts, request.headers.get(SCENARIO_HEADER))


def public_base_url(request: Request) -> str:
    """scheme://host[:port] the client used to reach the fake, so result URLs reach it too."""
    return f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def json_body(request: Request) -> Any:
    """The parsed body, or a 400 InvalidParameter for anything that is not a JSON document."""
    service = fake(request)
    catalog, limit = service.catalog, service.config.max_body_bytes
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise invalid_parameter(catalog, "Content-Type", f"must be application/json, not {content_type or 'missing'}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise invalid_parameter(catalog, "body", f"larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise invalid_parameter(catalog, "body", f"larger than {limit} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise invalid_parameter(catalog, "body", f"not valid JSON ({type(exc).__name__})") from None


def error_reply(error: DashScopeError) -> JSONResponse:
    return JSONResponse(error.envelope(new_request_id()), status_code=error.status, headers=error.headers)
