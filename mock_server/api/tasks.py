"""GET /tasks/{id}, POST /tasks/{id}/cancel and GET /tasks."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import parse
from ..accounts import ApiKey
from ..backend.tasks import ListFilters, format_time, parse_list_time
from ..domain.tasks import CANCELED, FAILED, PENDING, RUNNING, SUCCEEDED, UNKNOWN, Task
from ..errors import invalid_parameter
from ..openapi import LIST_TIME_PATTERN, MAX_PAGE_NO, MAX_PAGE_SIZE
from ..service import FakeDashScope
from .faults import request_effect
from .http import (
    authenticate,
    fake,
    new_request_id,
    public_base_url,
    reply,
    scenario_for,
)

LIST_STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED)
_LIST_TIME = re.compile(LIST_TIME_PATTERN)


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


async def _task_api_call(request: Request, endpoint: str) -> tuple[FakeDashScope, ApiKey, Response | None]:
    """Key, task-API rate limit and scenario, common to the three task endpoints."""
    service = fake(request)
    key = authenticate(request)
    service.tasks.throttle(key)
    task_id = request.path_params.get("task_id")
    model = service.tasks.model_of(key, task_id) if task_id else None
    return service, key, await request_effect(service, scenario_for(request, endpoint, key, model=model))


async def get_task(request: Request) -> Response:
    service, key, early = await _task_api_call(request, "task-query")
    if early is not None:
        return early
    task_id = request.path_params["task_id"]
    task = service.tasks.poll(key, task_id)
    if task is None:
        return reply({"request_id": new_request_id(), "output": {"task_id": task_id, "task_status": UNKNOWN}})
    body: dict[str, Any] = {"request_id": new_request_id(), "output": task_output(service, task, public_base_url(request))}
    if task.status == SUCCEEDED:
        body["usage"] = {"image_count": task.succeeded_count}
    return reply(body)


async def cancel_task(request: Request) -> Response:
    service, key, early = await _task_api_call(request, "task-cancel")
    if early is not None:
        return early
    service.tasks.cancel(key, request.path_params["task_id"])
    return reply({"request_id": new_request_id()})


def _page_param(service: FakeDashScope, query: Any, name: str, default: int, maximum: int | None = None) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        return parse.decimal(text, low=1, high=maximum)
    except parse.BadInput:
        bound = f"between 1 and {maximum}" if maximum else "a positive integer"
        raise invalid_parameter(service.catalog, name, f"must be {bound}") from None


def _list_filters(service: FakeDashScope, query: Any) -> ListFilters:
    found: dict[str, Any] = {name: query[name] for name in ("model_name", "api_key_id", "region") if query.get(name)}
    if "status" in query:
        if query["status"] not in LIST_STATUSES:
            raise invalid_parameter(service.catalog, "status", f"must be one of {', '.join(LIST_STATUSES)}")
        found["status"] = query["status"]
    for name in ("start_time", "end_time"):
        if name in query:
            if not _LIST_TIME.fullmatch(query[name]):
                raise invalid_parameter(service.catalog, name, "must be YYYYMMDDhhmmss, e.g. 20230420000000")
            found[name] = parse_list_time(query[name])
    return ListFilters(**found)


async def list_tasks(request: Request) -> Response:
    service, key, early = await _task_api_call(request, "task-list")
    if early is not None:
        return early
    query = request.query_params
    page_no = _page_param(service, query, "page_no", 1, MAX_PAGE_NO)
    page_size = _page_param(service, query, "page_size", 10, MAX_PAGE_SIZE)
    page, total = service.tasks.list(key, _list_filters(service, query), page_no, page_size)
    return reply({
        "request_id": new_request_id(),
        "data": [{
            "task_id": t.task_id, "status": t.status, "model_name": t.model, "region": t.region,
            "api_key_id": t.api_key_id, "gmt_create": format_time(t.submit_time),
            **({"start_time": format_time(t.scheduled_time)} if t.scheduled_time is not None else {}),
            **({"end_time": format_time(t.end_time)} if t.end_time is not None else {}),
        } for t in page],
        "total": total, "total_page": service.total_pages(total, page_size), "page_no": page_no, "page_size": page_size,
    })
