"""The generation endpoints: synchronous (JSON, or server-sent events) and asynchronous (a task)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dashscope_schemas import Endpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .. import effects
from ..errors import DashScopeError
from . import streaming
from .faults import request_effect
from .http import (
    authenticate,
    fake,
    json_body,
    new_request_id,
    public_base_url,
    region_of,
    reply,
    scenario_for,
)


def _resolves_oss(request: Request) -> bool:
    return request.headers.get("x-dashscope-ossresourceresolve", "").lower() == "enable"


def handler_for(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The request handler of a generation endpoint of the catalog, by its mode."""
    return _sync_generation(endpoint.name) if endpoint.is_sync_generation else _image_synthesis(endpoint.name)


def _sync_generation(endpoint: str) -> Callable[[Request], Awaitable[Response]]:
    async def generate(request: Request) -> Response:
        return await _generate_now(request, endpoint)

    generate.__name__ = f"generate_{endpoint.replace('-', '_')}"
    return generate


async def _generate_now(request: Request, endpoint: str) -> Response:
    service = fake(request)
    key = authenticate(request)
    body = await json_body(request)
    generation = service.generation.check(endpoint, body, dict(request.headers), region_of(request))
    # Limits first: a throttled request must not use up a one-shot scenario meant for a real one.
    service.generation.admit(key, generation)
    scenario = scenario_for(request, endpoint, key, model=generation.model.name, prompt=generation.orig_prompt)
    early = await request_effect(service, scenario)
    if early is not None:
        return early
    request_id = new_request_id()
    stream = request.headers.get("x-dashscope-sse", "").lower() == "enable"
    try:
        result = service.generation.generate_sync(key, generation, resolve_oss=_resolves_oss(request), scenario=scenario)
    except DashScopeError as error:
        if stream and scenario is not None and effects.fails_in_stream(scenario.effect):
            # Failures found while generating arrive inside the stream, as event:error.
            return StreamingResponse(streaming.error_events(error, request_id), media_type=streaming.SSE_MEDIA_TYPE)
        raise
    expires = service.clock.now() + service.config.url_ttl
    base = public_base_url(request)
    urls = [service.files.result_url(base, image_id, expires) for image_id in result.image_ids]
    if stream:
        incremental = (body.get("parameters") or {}).get("incremental_output") is True
        events = streaming.result_events(urls, result.width, result.height, request_id, incremental)
        return StreamingResponse(events, media_type=streaming.SSE_MEDIA_TYPE)
    return reply({
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
                                                                      "content": [{"image": u} for u in urls]}}]},
        "usage": {"width": result.width, "height": result.height, "image_count": len(urls)},
        "request_id": request_id,
    })


def _image_synthesis(endpoint: str) -> Callable[[Request], Awaitable[Response]]:
    async def create_task(request: Request) -> Response:
        service = fake(request)
        key = authenticate(request)
        body = await json_body(request)
        generation = service.generation.check(endpoint, body, dict(request.headers), region_of(request))
        service.generation.admit(key, generation)  # before the scenario, as above
        scenario = scenario_for(request, endpoint, key, model=generation.model.name, prompt=generation.orig_prompt)
        early = await request_effect(service, scenario)
        if early is not None:
            return early
        task = service.generation.create_task(key, generation, resolve_oss=_resolves_oss(request), scenario=scenario)
        # 200, never 201: the SDK treats anything but 200 as a failure.
        return reply({"request_id": new_request_id(), "output": {"task_id": task.task_id, "task_status": task.status}})

    create_task.__name__ = f"create_{endpoint.replace('-', '_')}_task"
    return create_task
