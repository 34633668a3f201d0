"""POST multimodal-generation (sync) and the two image-synthesis endpoints (async)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from .http import authenticate, fake, json_body, new_request_id, public_base_url, region_of, reply


async def multimodal_generation(request: Request) -> JSONResponse:
    service = fake(request)
    authenticate(request)
    body = await json_body(request)
    generation = service.check("multimodal-generation", body, dict(request.headers), region_of(request))
    result = service.generate_sync(generation)
    expires = service.clock.now() + service.config.url_ttl
    base = public_base_url(request)
    content = [{"image": service.result_url(base, image_id, expires)} for image_id in result.image_ids]
    return reply({
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": content}}]},
        "usage": {"width": result.width, "height": result.height, "image_count": len(content)},
        "request_id": new_request_id(),
    })


def image_synthesis(endpoint: str):
    async def create_task(request: Request) -> JSONResponse:
        service = fake(request)
        key = authenticate(request)
        body = await json_body(request)
        generation = service.check(endpoint, body, dict(request.headers), region_of(request))
        task = service.create_task(key, generation)
        # 200, never 201: the SDK treats anything but 200 as a failure.
        return reply({"request_id": new_request_id(), "output": {"task_id": task.task_id, "task_status": task.status}})

    create_task.__name__ = f"create_{endpoint.replace('-', '_')}_task"
    return create_task
