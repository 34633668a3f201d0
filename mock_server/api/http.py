"""What every endpoint of the faked API does the same way: request ids, keys, bodies, replies."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from dashscope_schemas import Catalog, Endpoint
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .. import parse
from ..backend.calls import Call
from ..errors import DashScopeError, invalid_parameter
from ..ids import new_id
from ..service import FakeDashScope


def service_of(request: Request) -> FakeDashScope:
    service: FakeDashScope = request.scope["app"].state.service  # not request.app: a property per call
    return service


def region_of(request: Request) -> str:
    region: str = request.scope["state"]["region"]  # set by the RegionRouter middleware
    return region


def new_request_id() -> str:
    return new_id()


class JSONAnswer(Response):
    """Starlette's JSON answer (compact, UTF-8, the given headers then content-length and
    content-type), built directly: encoded by orjson, the same bytes for the documents the fake
    sends at a fraction of the cost, and its header list made in one go. What orjson refuses
    (integers past 64 bits, keys that are not text) takes Starlette's encoder."""

    def __init__(self, content: Any, status_code: int, headers: Mapping[str, str], media_type: str):
        self.status_code, self.media_type, self.background = status_code, media_type, None
        try:
            self.body = orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            self.body = JSONResponse(content).body
        self.raw_headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        self.raw_headers += [(b"content-length", str(len(self.body)).encode("latin-1")), (b"content-type", media_type.encode("latin-1"))]


# What a route answers under the API that is not one of the catalog's (an unknown path: the
# model gateway's "url error"): the gateway's x-request-id.
_GATEWAY_HEADERS = ("x-request-id",)


def endpoint_of(request: Request) -> Endpoint | None:
    """The catalog endpoint a request was routed to (None: no route matched)."""
    endpoints: dict[Any, Endpoint] = request.scope["app"].state.endpoint_of_handler
    return endpoints.get(request.scope.get("endpoint"))


def request_id_headers(request: Request | None, request_id: str, *, refused: bool = False,
                       endpoint: Endpoint | None = None) -> dict[str, str]:
    """The headers that repeat the request id, as the real route sends them (observation
    request-id-headers): a refusal carries only the gateway's x-request-id, an answer of the model
    service also x-dashscope-requestid. Every answer with a request id passes here."""
    endpoint = endpoint or (endpoint_of(request) if request is not None else None)
    if request is not None:
        request.scope.setdefault("state", {})["request_id"] = request_id  # the answer's id, for the journal (some routes send no header)
    names = endpoint.request_id_headers if endpoint is not None else _GATEWAY_HEADERS
    if refused:
        names = tuple(name for name in names if name in _GATEWAY_HEADERS)
    return dict.fromkeys(names, request_id)


def _json_answer(request: Request | None, data: dict[str, Any], status: int, request_id: str, *, refused: bool = False,
                 headers: dict[str, str] | None = None) -> JSONAnswer:
    """A JSON answer with the route's request-id headers and its JSON content type
    (application/json;charset=UTF-8 on /tasks), the route's endpoint looked up once."""
    endpoint = endpoint_of(request) if request is not None else None
    return JSONAnswer(data, status_code=status,
                      headers={**request_id_headers(request, request_id, refused=refused, endpoint=endpoint), **(headers or {})},
                      media_type=endpoint.content_type if endpoint is not None else "application/json")


def reply(request: Request, data: dict[str, Any], status: int = 200) -> JSONAnswer:
    """A JSON answer with the route's headers; `data` carries its request_id."""
    return _json_answer(request, data, status, data["request_id"])


async def call_of(request: Request, *, with_body: bool = False) -> Call:
    """What a backend verb needs of a request: region, headers, query and (when asked) the body,
    read within the body limit and the read timeout."""
    # Read from the scope directly (servers give header names in lower case; where a name
    # repeats, the last one counts, as Starlette's Headers.items() into a dict has it).
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.scope["headers"]}
    body = b""
    if with_body:
        service = service_of(request)
        body = await read_body(request, service.config.max_body_bytes, service.config.read_timeout, headers.get("content-length"))
    query = dict(request.query_params) if request.scope.get("query_string") else {}
    return Call(region_of(request), headers, query, body, new_request_id())


def public_base_url(request: Request) -> str:
    """scheme://host[:port] the client used to reach the fake, so result URLs reach it too."""
    # The Host header from the scope directly (the first one, as Starlette's Headers.get has it;
    # servers give names in lower case), not through a Headers object made for it.
    host = next((value for name, value in request.scope["headers"] if name == b"host"), None)
    return f"{request.scope['scheme']}://{host.decode('latin-1')}" if host else f"{request.url.scheme}://{request.url.netloc}"


def declared_length(request: Request, declared: str | None = None) -> int | None:
    """The Content-Length a request declares (None: none; `declared`: its header, when already
    at hand), read by the one decimal parser; parse.BadInput when it is not a decimal."""
    declared = request.headers.get("content-length") if declared is None else declared
    return None if declared is None else parse.decimal(declared.strip())


# The message of the cancellation that ends a body read at its deadline (see read_body).
_READ_DEADLINE = "dashscope-mock: request body read deadline"


async def read_body(request: Request, limit: int, timeout: float, declared: str | None = None) -> bytes:
    """The whole body, or a 400: over `limit` bytes, or not all received within `timeout` seconds
    (a client that stops sending must not hold a connection and its buffer for ever).
    `declared`: the Content-Length header, when the caller has it at hand."""
    catalog = service_of(request).catalog
    try:
        size = declared_length(request, declared)
    except parse.BadInput as bad:
        raise invalid_parameter(catalog, "Content-Length", str(bad)) from None
    if size is not None and size > limit:
        raise invalid_parameter(catalog, "body", f"larger than {limit} bytes")
    # The deadline is one timer that cancels this task, as asyncio.timeout arms, without its
    # bookkeeping: a third of the cost, on every request with a body.
    task = asyncio.current_task()
    assert task is not None
    deadline = asyncio.get_running_loop().call_later(timeout, task.cancel, _READ_DEADLINE)
    try:
        return await _receive_body(request, limit, catalog)
    except asyncio.CancelledError as cancelled:
        # Ours alone (no other cancellation of the task pending): the deadline passed.
        if cancelled.args == (_READ_DEADLINE,) and task.uncancel() == 0:
            raise invalid_parameter(catalog, "body", f"not received within {timeout:g} s") from None
        raise
    finally:
        deadline.cancel()


async def _receive_body(request: Request, limit: int, catalog: Catalog) -> bytes:
    """Body chunks from ASGI's receive directly (what Request.stream() does, without an async
    generator per request) until one says no more follows."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise invalid_parameter(catalog, "body", f"larger than {limit} bytes")
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def error_reply(error: DashScopeError, request: Request | None = None) -> JSONAnswer:
    request_id = new_request_id()
    return _json_answer(request, error.envelope(request_id), error.status, request_id, refused=True, headers=error.headers)
