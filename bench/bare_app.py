"""The least a fake of the image task API can do, as a baseline for bench_servers.py: parse the
JSON body, check the key, keep the task in a dict, and answer create and poll in the fake's JSON
shapes (a poll finishes the task, as `serve --fast` does). No validation, limits, journal or
images: what is left is the cost of Starlette and the server stack under it.

    uvicorn bench.bare_app:app --loop asyncio --http h11                        # uvicorn's pure-Python stack
    uvicorn bench.bare_app:app --loop uvloop --http httptools --no-access-log   # the fake's stack: the practical limit
"""

from __future__ import annotations

import time
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEYS = {"sk-demoabj1-0000000000000000"}
_tasks: dict[str, dict] = {}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"request_id": str(uuid.uuid4()), "code": code, "message": message}, status_code=status)


def _time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


def _authorized(request: Request) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return scheme == "Bearer" and key in KEYS


async def create(request: Request) -> JSONResponse:
    if not _authorized(request):
        return _error(401, "InvalidApiKey", "Invalid API-key provided.")
    try:
        body = await request.json()
        prompt = body["input"]["prompt"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "InvalidParameter", "The request body is not valid.")
    task_id = str(uuid.uuid4())
    _tasks[task_id] = {"task_id": task_id, "task_status": "PENDING", "submit_time": time.time(), "prompt": prompt}
    return JSONResponse({"request_id": str(uuid.uuid4()), "output": {"task_id": task_id, "task_status": "PENDING"}})


async def poll(request: Request) -> JSONResponse:
    if not _authorized(request):
        return _error(401, "InvalidApiKey", "Invalid API-key provided.")
    task = _tasks.get(request.path_params["task_id"])
    if task is None:
        return _error(404, "NotFound", "The task does not exist.")
    if task["task_status"] == "PENDING":
        task["task_status"], task["end_time"] = "SUCCEEDED", time.time()
    base = f"{request.url.scheme}://{request.url.netloc}"
    url = (f"{base}/__oss/dashscope-result-fake/results/{task['task_id']}.png?Expires={int(task['end_time']) + 86400}"
           "&OSSAccessKeyId=LTAI5tFakeDashScopeMock&Signature=bare")
    return JSONResponse({
        "request_id": str(uuid.uuid4()),
        "output": {"task_id": task["task_id"], "task_status": task["task_status"], "submit_time": _time(task["submit_time"]),
                   "scheduled_time": _time(task["submit_time"]), "end_time": _time(task["end_time"]),
                   "results": [{"url": url, "orig_prompt": task["prompt"], "actual_prompt": task["prompt"]}],
                   "task_metrics": {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}},
        "usage": {"image_count": 1},
    })


app = Starlette(routes=[
    Route("/{region}/api/v1/services/aigc/text2image/image-synthesis", create, methods=["POST"]),
    Route("/{region}/api/v1/tasks/{task_id}", poll, methods=["GET"]),
])
