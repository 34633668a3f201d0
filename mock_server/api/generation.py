"""The generation endpoints: synchronous (JSON, or server-sent events) and asynchronous (a task)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dashscope_schemas import Endpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..backend.generation import SyncResult
from ..domain.tasks import Task
from . import streaming
from .faults import carry_out
from .http import call_of, new_request_id, public_base_url, reply, service_of

Handler = Callable[[Request], Awaitable[Response]]


def handler_for(endpoint: Endpoint) -> Handler:
    """The request handler of a generation endpoint of the catalog: read the call, one verb
    (service.generation.submit), render by the endpoint's mode."""

    async def generate(request: Request) -> Response:
        service = service_of(request)
        outcome = service.generation.submit(endpoint.name, await call_of(request, with_body=True))
        instead = await carry_out(outcome.interruption)
        if instead is not None:
            return instead
        request_id = new_request_id()
        stream = request.headers.get("x-dashscope-sse", "").lower() == "enable"
        if outcome.failure is not None:
            if stream:  # failures found while generating arrive inside the stream, as event:error
                return StreamingResponse(streaming.error_events(outcome.failure, request_id), media_type=streaming.SSE_MEDIA_TYPE)
            raise outcome.failure
        if isinstance(outcome.value, Task):
            # 200, never 201: the SDK treats anything but 200 as a failure.
            return reply({"request_id": request_id, "output": {"task_id": outcome.value.task_id,
                                                               "task_status": outcome.value.status}})
        assert isinstance(outcome.value, SyncResult)
        return _images(request, outcome.value, request_id, stream)

    generate.__name__ = f"{'create' if endpoint.is_async else 'generate'}_{endpoint.name.replace('-', '_')}"
    return generate


def _images(request: Request, result: SyncResult, request_id: str, stream: bool) -> Response:
    service = service_of(request)
    expires = service.clock.now() + service.config.url_ttl
    base = public_base_url(request)
    urls = [service.files.result_url(base, image_id, expires) for image_id in result.image_ids]
    if stream:
        events = streaming.result_events(urls, result.width, result.height, request_id, result.incremental)
        return StreamingResponse(events, media_type=streaming.SSE_MEDIA_TYPE)
    return reply({
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
                                                                      "content": [{"image": u} for u in urls]}}]},
        "usage": {"width": result.width, "height": result.height, "image_count": len(urls)},
        "request_id": request_id,
    })
