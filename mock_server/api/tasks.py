"""GET /tasks/{id}, POST /tasks/{id}/cancel and GET /tasks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..backend.tasks import format_time
from ..domain.tasks import FAILED, SUCCEEDED, UNKNOWN, Task
from ..service import FakeDashScope
from .faults import carry_out
from .http import call_of, new_request_id, public_base_url, reply, service_of


def task_output(service: FakeDashScope, task: Task, base_url: str) -> dict[str, Any]:
    """The output object of a task as GET /tasks/{id} shows it in its current status."""
    output: dict[str, Any] = {"task_id": task.task_id, "task_status": task.status, "submit_time": format_time(task.submit_time)}
    if task.scheduled_time is not None:
        output["scheduled_time"] = format_time(task.scheduled_time)
    if task.end_time is not None:
        output["end_time"] = format_time(task.end_time)
    if task.status == SUCCEEDED:
        assert task.end_time is not None  # a SUCCEEDED task has ended
        expires = task.end_time + service.config.url_ttl
        output["results"] = [
            {"url": service.files.result_url(base_url, o.image_id or "", expires), "orig_prompt": task.orig_prompt,
             "actual_prompt": task.actual_prompt} if o.ok else {"code": o.code, "message": o.message}
            for o in task.outcomes
        ]
    if task.status == FAILED:
        internal = service.catalog.error("internal_error")
        code, message = task.failure or next(((o.code, o.message) for o in task.outcomes if not o.ok),
                                             (internal["code"], internal["message"]))
        output["code"], output["message"] = code, message
    if task.status in (SUCCEEDED, FAILED):
        ok = task.succeeded_count
        output["task_metrics"] = {"TOTAL": len(task.outcomes), "SUCCEEDED": ok, "FAILED": len(task.outcomes) - ok}
    return output


async def get_task(request: Request) -> Response:
    service, task_id = service_of(request), request.path_params["task_id"]
    outcome = service.tasks.query(await call_of(request), task_id)
    instead = await carry_out(outcome.interruption)
    if instead is not None:
        return instead
    task = outcome.value
    if task is None:
        return reply({"request_id": new_request_id(), "output": {"task_id": task_id, "task_status": UNKNOWN}})
    body: dict[str, Any] = {"request_id": new_request_id(), "output": task_output(service, task, public_base_url(request))}
    if task.status == SUCCEEDED:
        body["usage"] = {"image_count": task.succeeded_count}
    return reply(body)


async def cancel_task(request: Request) -> Response:
    outcome = service_of(request).tasks.cancel_call(await call_of(request), request.path_params["task_id"])
    instead = await carry_out(outcome.interruption)
    return instead if instead is not None else reply({"request_id": new_request_id()})


async def list_tasks(request: Request) -> Response:
    service = service_of(request)
    outcome = service.tasks.list_page(await call_of(request))
    instead = await carry_out(outcome.interruption)
    if instead is not None:
        return instead
    assert outcome.value is not None
    page = outcome.value
    return reply({
        "request_id": new_request_id(),
        "data": [{
            "task_id": t.task_id, "status": t.status, "model_name": t.model, "region": t.region,
            "api_key_id": t.api_key_id, "gmt_create": format_time(t.submit_time),
            **({"start_time": format_time(t.scheduled_time)} if t.scheduled_time is not None else {}),
            **({"end_time": format_time(t.end_time)} if t.end_time is not None else {}),
        } for t in page.tasks],
        "total": page.total, "total_page": service.total_pages(page.total, page.page_size), "page_no": page.page_no,
        "page_size": page.page_size,
    })
