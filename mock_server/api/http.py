"""What every endpoint of the faked API does the same way: request ids, keys, bodies, replies."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .. import parse
from ..accounts import ApiKey
from ..errors import DashScopeError, invalid_parameter
from ..scenarios import SCENARIO_HEADER, Scenario
from ..service import FakeDashScope


def fake(request: Request) -> FakeDashScope:
    service: FakeDashScope = request.app.state.fake
    return service


def region_of(request: Request) -> str:
    region: str = request.scope["state"]["region"]  # set by the RegionRouter middleware
    return region


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


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, or a 400: over `limit` bytes, or not all received within `timeout` seconds
    (a client that stops sending must not hold a connection and its buffer for ever)."""
    catalog = fake(request).catalog
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = parse.decimal(declared.strip())
        except parse.BadInput as bad:
            raise invalid_parameter(catalog, "Content-Length", str(bad)) from None
        if size > limit:
            raise invalid_parameter(catalog, "body", f"larger than {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise invalid_parameter(catalog, "body", f"larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise invalid_parameter(catalog, "body", f"not received within {timeout:g} s") from None
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    """The parsed body, or a 400 InvalidParameter for anything that is not a JSON document
    within the bounds of parse.json_document."""
    service = fake(request)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise invalid_parameter(service.catalog, "Content-Type", f"must be application/json, not {content_type or 'missing'}")
    raw = await read_body(request, service.config.max_body_bytes, service.config.read_timeout)
    try:
        return parse.json_document(raw)
    except parse.BadInput as bad:
        raise invalid_parameter(service.catalog, "body", str(bad)) from None


def error_reply(error: DashScopeError) -> JSONResponse:
    return JSONResponse(error.envelope(new_request_id()), status_code=error.status, headers=error.headers)
