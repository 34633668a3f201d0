"""GET /tasks/{id}, POST /tasks/{id}/cancel and GET /tasks."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..backend.tasks import format_time
from ..domain.tasks import FAILED, RUNNING, SUCCEEDED, UNKNOWN, Task
from ..service import FakeDashScope
from .faults import carry_out
from .http import call_of, public_base_url, reply, service_of


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
    if task.status == RUNNING:  # the real RUNNING answer counts too (observation running-task-metrics)
        output["task_metrics"] = {"TOTAL": len(task.outcomes), "SUCCEEDED": 0, "FAILED": 0}
    if task.status in (SUCCEEDED, FAILED):
        ok = task.succeeded_count
        output["task_metrics"] = {"TOTAL": len(task.outcomes), "SUCCEEDED": ok, "FAILED": len(task.outcomes) - ok}
    return output


async def get_task(request: Request) -> Response:
    service, task_id = service_of(request), request.path_params["task_id"]
    call = await call_of(request)
    outcome = service.tasks.query(call, task_id)
    instead = await carry_out(outcome.interruption)
    if instead is not None:
        return instead
    task = outcome.value
    if task is None:
        return reply(request, {"request_id": call.request_id, "output": {"task_id": task_id, "task_status": UNKNOWN}})
    body: dict[str, Any] = {"request_id": call.request_id, "output": task_output(service, task, public_base_url(request))}
    if task.status == SUCCEEDED:
        body["usage"] = {"image_count": task.succeeded_count}
    return reply(request, body)


async def cancel_task(request: Request) -> Response:
    call = await call_of(request)
    outcome = service_of(request).tasks.cancel_call(call, request.path_params["task_id"])
    instead = await carry_out(outcome.interruption)
    return instead if instead is not None else reply(request, {"request_id": call.request_id})


async def list_tasks(request: Request) -> Response:
    service = service_of(request)
    call = await call_of(request)
    outcome = service.tasks.list_page(call)
    instead = await carry_out(outcome.interruption)
    if instead is not None:
        return instead
    assert outcome.value is not None
    page = outcome.value
    return reply(request, {
        "total": page.total, "data": [_list_item(service, t) for t in page.tasks],
        "total_page": service.total_pages(page.total, page.page_size), "page_no": page.page_no,
        "request_id": call.request_id, "page_size": page.page_size,
    })


def _epoch_ms(epoch: float) -> int:
    return int(epoch * 1000)


@lru_cache(maxsize=4096)
def account_uid(account: str) -> str:
    """A numeric user id for an account, stable across runs, as the real list shows one."""
    return str(10**15 + int.from_bytes(hashlib.sha256(account.encode()).digest()[:8], "big") % (9 * 10**15))


def _list_item(service: FakeDashScope, task: Task) -> dict[str, Any]:
    """One task as the real list shows it (observation task-list-epoch-ms): times in epoch
    milliseconds, the caller's ids, the creating request's id and the API's unique key
    (apikey:v1:<group>:<task>:<function>:<model>, from the route the task came in by)."""
    uid = account_uid(task.account)
    item: dict[str, Any] = {
        "api_key_id": task.api_key_id, "caller_parent_id": uid, "caller_uid": uid,
        **({"end_time": _epoch_ms(task.end_time)} if task.end_time is not None else {}),
        "gmt_create": _epoch_ms(task.submit_time), "model_name": task.model, "region": task.region,
        "request_id": task.request_id,
        **({"start_time": _epoch_ms(task.scheduled_time)} if task.scheduled_time is not None else {}),
        "status": task.status, "task_id": task.task_id,
        "user_api_unique_key": _unique_key_prefix(service.catalog.endpoints[task.endpoint].path) + task.model,
    }
    return item


@lru_cache(maxsize=64)
def _unique_key_prefix(route_path: str) -> str:
    """'apikey:v1:<group>:<task>:<function>:' of a generation route's path (/services/<group>/<task>/<function>)."""
    return ":".join(["apikey", "v1", *route_path.removeprefix("/services/").split("/"), ""])
