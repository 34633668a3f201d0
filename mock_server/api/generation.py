"""The generation endpoints: synchronous (JSON, or server-sent events) and asynchronous (a task)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dashscope_schemas import Endpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..backend.calls import Call
from ..backend.generation import SyncResult
from ..domain.tasks import Task
from ..errors import DashScopeError
from . import streaming
from .faults import carry_out
from .http import call_of, public_base_url, reply, request_id_headers, service_of

Handler = Callable[[Request], Awaitable[Response]]


def handler_for(endpoint: Endpoint) -> Handler:
    """The request handler of a generation endpoint of the catalog: read the call, one verb
    (service.generation.submit), render by the endpoint's mode."""

    async def generate(request: Request) -> Response:
        service = service_of(request)
        call = await call_of(request, with_body=True)
        stream = call.enabled("x-dashscope-sse")
        try:
            outcome = service.generation.submit(endpoint.name, call)
        except DashScopeError as error:
            if stream and error.status == 400:
                # A request refused as invalid, asked as a stream, is refused inside the stream:
                # HTTP 200, one event:error (observation sse-validation-error-in-stream).
                return _stream(request, streaming.error_events(error, call.request_id), call, refused=True)
            raise
        instead = await carry_out(outcome.interruption)
        if instead is not None:
            return instead
        if outcome.failure is not None:
            if stream:  # failures found while generating arrive inside the stream, as event:error
                return _stream(request, streaming.error_events(outcome.failure, call.request_id), call, refused=True)
            raise outcome.failure
        if isinstance(outcome.value, Task):
            # 200, never 201: the SDK treats anything but 200 as a failure.
            return reply(request, {"request_id": call.request_id, "output": {"task_id": outcome.value.task_id,
                                                                             "task_status": outcome.value.status}})
        assert isinstance(outcome.value, SyncResult)
        return _images(request, outcome.value, call, stream)

    generate.__name__ = f"{'create' if endpoint.is_async else 'generate'}_{endpoint.name.replace('-', '_')}"
    return generate


def _stream(request: Request, events: streaming.Events, call: Call, *, refused: bool = False) -> StreamingResponse:
    headers = request_id_headers(request, call.request_id, refused=refused)
    return StreamingResponse(events, media_type=streaming.SSE_MEDIA_TYPE, headers=headers)


def _images(request: Request, result: SyncResult, call: Call, stream: bool) -> Response:
    service = service_of(request)
    # Signed for about 7 days from the answer, not 24 hours (observation sync-url-7-days).
    expires = service.clock.now() + service.config.sync_url_ttl
    base = public_base_url(request)
    urls = [service.files.result_url(base, image_id, expires) for image_id in result.image_ids]
    request.state.result_urls = urls  # for the journal: the dashboard shows a sync call's images
    if stream:
        return _stream(request, streaming.result_events(urls, result.width, result.height, call.request_id, result.incremental), call)
    made, asked = len(urls), result.requested or len(urls)
    return reply(request, {
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
                                                                      "content": [{"image": u} for u in urls]}}],
                   # Singular, beside choices, in the real answers (observation sync-task-metric).
                   "task_metric": {"TOTAL": asked, "SUCCEEDED": made, "FAILED": asked - made}},
        "usage": {"width": result.width, "height": result.height, "image_count": made},
        "request_id": call.request_id,
    })
