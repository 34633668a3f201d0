"""Mutants of the fake: the kit's own DashScope fake with exactly one deliberate, realistic defect.

A contract suite is only worth something if it notices when a server drifts from the docs. The
suite passing against the faithful fake proves little on its own (the fake and the suite were
written by the same people, from the same notes); these mutants are the other half of the proof.
Each one is the real fake plus ONE small change of a different kind (a renamed field, a missing
field, a wrong type, a wrong HTTP status, a wrong error code, a forbidden state transition,
inconsistent counts, wrong image sizes, a cancel that should be refused, tasks that outlive their
24 hours, keys accepted in the wrong region, a leak between accounts), and then one for each kind
of thing the real service was observed to do beyond the pages (schemas/observations.json): the
task list's times, paging and filters, the request-id headers and content types, task_metric(s),
result URL lifetimes, the service's own error texts, errors inside an event stream and the
stream's framing, a wrong method, the upload policy, a rate limit. tests/test_contract_mutations.py
runs the whole contract suite against each of them: every defective mutant must make the suite
report drift, and the check named for it (the first of its `expected_checks`) must be among the
ones that did; the faithful one must pass with no drift. A defect the suite does not catch is a
gap in the suite, to be fixed there, not by making the mutant louder.

The defects are made without copying any of the fake's code: an ASGI middleware that rewrites one
kind of answer on its way out (its JSON, its raw body, or its headers), or a narrow wrapper around
one FakeDashScope method of its backend on that one instance (never a module-wide patch), so the
mutant keeps tracking the fake as it evolves.

    python tests/mutants.py --list
    python tests/mutants.py renamed-field --port 8090 [--profile 2025-12] [--fast] [--no-rate-limits]

They live with the tests, not in the installed kit: a deliberately broken server is a test tool.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import dashscope_schemas as ds
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.app import create_app
from mock_server.backend.generation import SyncResult
from mock_server.config import Config
from mock_server.errors import DashScopeError
from mock_server.service import FakeDashScope

Rewrite = Callable[[int, Any], "tuple[int, Any] | None"]


# --- the two ways of breaking the fake ------------------------------------------------------------


class _Buffered:
    """ASGI middleware: the whole answer to `method` on paths matching `path` is held, then
    `answer(start, body, send)` sends it (changed or not). Other requests pass untouched."""

    def __init__(self, app: ASGIApp, *, method: str | None, path: str):
        self.app, self.method, self.path = app, method, re.compile(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.method and scope["method"] != self.method) or not self.path.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self.answer(start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, hold)

    async def answer(self, start: Message, body: bytes, send: Send) -> None:
        raise NotImplementedError

    @staticmethod
    async def _send(start: Message, status: int, headers: list[tuple[bytes, bytes]], body: bytes, send: Send) -> None:
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _content_type(headers: list[tuple[bytes, bytes]]) -> str:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")


class JsonRewrite(_Buffered):
    """The JSON answers go through `rewrite(status, body)`, which returns the (status, body) to
    send instead, or None to leave the answer alone. Answers that are not JSON pass untouched."""

    def __init__(self, app: ASGIApp, *, method: str | None, path: str, rewrite: Rewrite):
        super().__init__(app, method=method, path=path)
        self.rewrite = rewrite

    async def answer(self, start: Message, body: bytes, send: Send) -> None:
        headers, status = list(start.get("headers", [])), start["status"]
        if _content_type(headers).startswith("application/json"):
            changed = self.rewrite(status, json.loads(body))
            if changed is not None:
                status, data = changed
                body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        await self._send(start, status, headers, body, send)


RawRewrite = Callable[[int, str, bytes], "tuple[int, str, bytes] | None"]


class BodyRewrite(_Buffered):
    """Any answer goes through `rewrite(status, content_type, body bytes)`, which returns the
    (status, content type, body) to send instead, or None (an event stream, for instance)."""

    def __init__(self, app: ASGIApp, *, method: str | None, path: str, rewrite: RawRewrite):
        super().__init__(app, method=method, path=path)
        self.rewrite = rewrite

    async def answer(self, start: Message, body: bytes, send: Send) -> None:
        headers, status = list(start.get("headers", [])), start["status"]
        changed = self.rewrite(status, _content_type(headers), body)
        if changed is not None:
            status, content_type, body = changed
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"] + [(b"content-type", content_type.encode("latin-1"))]
        await self._send(start, status, headers, body, send)


HeaderEdit = Callable[[list[tuple[bytes, bytes]]], list[tuple[bytes, bytes]]]


class HeaderRewrite:
    """ASGI middleware: the headers of answers on paths matching `path` go through `edit`."""

    def __init__(self, app: ASGIApp, *, path: str, edit: HeaderEdit):
        self.app, self.path, self.edit = app, re.compile(path), edit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.path.search(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def edited(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self.edit(list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, edited)


def _rewriting(method: str | None, path: str, rewrite: Rewrite) -> Callable[[FakeDashScope], ASGIApp]:
    """make_app of a mutant whose one defect is a rewrite of some JSON answers."""

    def make_app(service: FakeDashScope) -> ASGIApp:
        app = create_app(service=service)
        app.add_middleware(JsonRewrite, method=method, path=path, rewrite=rewrite)
        return app

    return make_app


def _middleware(cls: type, **options: Any) -> Callable[[FakeDashScope], ASGIApp]:
    """make_app of a mutant whose one defect is an ASGI middleware of its own (`cls(app, **options)`)."""

    def make_app(service: FakeDashScope) -> ASGIApp:
        app = create_app(service=service)
        app.add_middleware(cls, **options)
        return app

    return make_app


def _patching(patch: Callable[[FakeDashScope], None]) -> Callable[[FakeDashScope], ASGIApp]:
    """make_app of a mutant whose one defect is a wrapper around a method of this one instance."""

    def make_app(service: FakeDashScope) -> ASGIApp:
        patch(service)
        return create_app(service=service)

    return make_app


def _path_pattern(*names: str) -> str:
    """A regex of the paths (below /api/v1) of the catalog's endpoints `names`, or of the kind
    of endpoint ("sync", "async") when a name is one of those."""
    endpoints = ds.load_catalog().endpoints.values()
    paths = [e.path for e in endpoints if e.name in names or e.mode in names]
    return "/api/v1(?:" + "|".join(re.escape(p).replace(r"\{task_id\}", "[^/]+") for p in paths) + ")$"


TASK_QUERY = _path_pattern("task-query")
TASK_LIST = _path_pattern("task-list")
TASK_ROUTES = _path_pattern("task-query", "task-cancel", "task-list")
UPLOAD_POLICY = _path_pattern("upload-policy")
IMAGE_SYNTHESIS = _path_pattern("async")
MULTIMODAL = _path_pattern("sync")
GENERATION = _path_pattern("sync", "async")
POST_APIS = _path_pattern("sync", "async", "task-cancel")
ANY_API = r"/api/v1/"
CATALOG = ds.load_catalog()
SERVICE_TZ = timezone(timedelta(hours=8))


def _output(body: Any) -> dict:
    output = body.get("output") if isinstance(body, dict) else None
    return output if isinstance(output, dict) else {}


# --- the defects -----------------------------------------------------------------------------------


def _rename_url(status: int, body: Any):
    """SUCCEEDED results carry image_url instead of url."""
    output = _output(body)
    if status != 200 or output.get("task_status") != "SUCCEEDED":
        return None
    output["results"] = [{("image_url" if k == "url" else k): v for k, v in r.items()} for r in output.get("results", [])]
    return status, body


def _drop_usage_width(status: int, body: Any):
    """A synchronous success whose usage lacks width."""
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("usage"), dict):
        return None
    body["usage"].pop("width", None)
    return status, body


def _image_count_as_string(status: int, body: Any):
    """usage.image_count serialised as a string ("1"), wherever usage has it."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict) or not isinstance(usage.get("image_count"), int):
        return None
    usage["image_count"] = str(usage["image_count"])
    return status, body


def _created_201(status: int, body: Any):
    """A created task answered 201 Created (the SDK treats anything but 200 as a failure)."""
    return (201, body) if status == 200 else None


def _metrics_off_by_one(status: int, body: Any):
    """task_metrics of a SUCCEEDED task counts one success too few (as a failure, so TOTAL still adds up)."""
    metrics = _output(body).get("task_metrics")
    if status != 200 or _output(body).get("task_status") != "SUCCEEDED" or not isinstance(metrics, dict):
        return None
    metrics["SUCCEEDED"] -= 1
    metrics["FAILED"] += 1
    return status, body


def _refused_cancel_succeeds(status: int, body: Any):
    """A cancel the service refuses (the task is past PENDING) answers 200 as if it had worked."""
    if status == 400 and isinstance(body, dict) and body.get("code") == "UnsupportedOperation":
        return 200, {"request_id": body.get("request_id")}
    return None


def _unauthorized_without_key(service: FakeDashScope) -> None:
    """A request without any key answers 401 Unauthorized instead of 401 InvalidApiKey."""
    authenticate = service.authenticate
    no_key = service.catalog.error("no_api_key")

    def wrapped(authorization, region):
        try:
            return authenticate(authorization, region)
        except DashScopeError as error:
            if (error.code, error.message) == (no_key["code"], no_key["message"]):
                raise DashScopeError(error.status, "Unauthorized", error.message, error.headers) from None
            raise

    service.authenticate = wrapped  # type: ignore[method-assign]


def _key_of_any_region(service: FakeDashScope) -> None:
    """A key is accepted at every region's endpoint: the region comes from the key, not the URL."""
    authenticate = service.authenticate

    def wrapped(authorization, region):
        try:
            return authenticate(authorization, region)
        except DashScopeError:
            found = service.keys.lookup((authorization or "").strip().partition(" ")[2].strip())
            if found is None:
                raise
            return authenticate(authorization, found.region)

    service.authenticate = wrapped  # type: ignore[method-assign]


def _week_long_tasks(service: FakeDashScope) -> None:
    """Task ids live 7 days instead of 24 hours (the TTL read in the wrong unit): a day-old task
    still answers its status and results instead of UNKNOWN."""
    week = service.config.task_ttl * 7
    service.config = dataclasses.replace(service.config, task_ttl=week)
    service.store.task_ttl = week  # type: ignore[attr-defined]  # the in-memory store's own sweep


def _lagging_replica(service: FakeDashScope) -> None:
    """Polls read from a lagging replica: right after a task's status changes, the next poll
    shows the state before the change once more (RUNNING -> PENDING, SUCCEEDED -> RUNNING)."""
    poll_task = service.tasks.poll
    last_seen: dict[str, Any] = {}
    stale: dict[str, Any] = {}

    def wrapped(key, task_id):
        task = poll_task(key, task_id)
        if task is None:
            return None
        before = last_seen.get(task_id)
        last_seen[task_id] = task
        if before is not None and before.status != task.status:
            stale[task_id] = before
            return task
        return stale.pop(task_id, task)

    service.tasks.poll = wrapped  # type: ignore[method-assign]


def _size_not_rounded(service: FakeDashScope) -> None:
    """Explicit sizes are used as given, not rounded to the rule's multiple (1033*1032 stays
    1033*1032 instead of 1040*1024): the fake's copy of the size rule lost its round_to."""
    check = service.generation.check

    def wrapped(endpoint, body, headers, region):
        request = check(endpoint, body, headers, region)
        rule = request.model.size_rule
        if request.size is None or rule.round_to is None:
            return request
        unrounded = dataclasses.replace(rule, round_to=None)
        return dataclasses.replace(request, model=dataclasses.replace(request.model, size_rule=unrounded))

    service.generation.check = wrapped  # type: ignore[method-assign]


def _region_only_ownership(service: FakeDashScope) -> None:
    """Task ownership compares the region only: another account's task id, with a key of the
    same region, answers the task itself instead of UNKNOWN (and can be cancelled)."""
    owned = service.tasks._owned

    def wrapped(key, task_id, now):
        task = owned(key, task_id, now)
        if task is None:
            other = service.store.get(task_id)
            if other is not None and other.region == key.region:
                task = owned(dataclasses.replace(key, account=other.account), task_id, now)
        return task

    service.tasks._owned = wrapped  # type: ignore[method-assign]


# --- defects against what the real service was observed to do (schemas/observations.json) ---------


def _error(body: Any) -> tuple[str | None, str | None]:
    return (body.get("code"), body.get("message")) if isinstance(body, dict) else (None, None)


def _list_times_as_strings(status: int, body: Any):
    """Task list times as the pages' date strings ('2024-03-01 10:38:04.485'), not epoch milliseconds."""
    data = body.get("data") if isinstance(body, dict) else None
    if status != 200 or not isinstance(data, list):
        return None
    for item in data:
        for name in ("gmt_create", "start_time", "end_time"):
            if isinstance(item.get(name), int):
                item[name] = datetime.fromtimestamp(item[name] / 1000, SERVICE_TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return status, body


def _page_size_ignored(service: FakeDashScope) -> None:
    """The task list serves pages of at least 10 whatever page_size asks (and echoes the page_size asked)."""
    list_tasks = service.tasks.list

    def wrapped(key, filters, page_no, page_size):
        return list_tasks(key, filters, page_no, max(page_size, 10))

    service.tasks.list = wrapped  # type: ignore[method-assign]


def _list_filters_ignored(service: FakeDashScope) -> None:
    """The task list's status and model_name filters are read but not applied."""
    list_tasks = service.tasks.list

    def wrapped(key, filters, page_no, page_size):
        return list_tasks(key, dataclasses.replace(filters, status=None, model_name=None), page_no, page_size)

    service.tasks.list = wrapped  # type: ignore[method-assign]


def _without_request_id_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """No x-request-id / x-dashscope-requestid (the request id only in the body)."""
    return [(k, v) for k, v in headers if k.lower() not in (b"x-request-id", b"x-dashscope-requestid")]


def _json_without_charset(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """/tasks answers as application/json, without ;charset=UTF-8."""
    return [(k, b"application/json" if k.lower() == b"content-type" and v.startswith(b"application/json") else v) for k, v in headers]


def _drop_task_metric(status: int, body: Any):
    """A synchronous success without output.task_metric (what the pages print)."""
    output = _output(body)
    if status != 200 or "task_metric" not in output:
        return None
    del output["task_metric"]
    return status, body


def _running_without_metrics(status: int, body: Any):
    """A RUNNING task without task_metrics (what the pages print)."""
    output = _output(body)
    if status != 200 or output.get("task_status") != "RUNNING" or "task_metrics" not in output:
        return None
    del output["task_metrics"]
    return status, body


def _sync_urls_for_a_day(service: FakeDashScope) -> None:
    """Synchronous result URLs are signed for 24 hours (the task URLs' lifetime), not about 7 days."""
    service.config = dataclasses.replace(service.config, sync_url_ttl=service.config.url_ttl)


def _task_urls_for_a_week(service: FakeDashScope) -> None:
    """Task result URLs are signed for the synchronous answers' 7 days, not end_time + 24 h."""
    service.config = dataclasses.replace(service.config, url_ttl=service.config.sync_url_ttl)


def _docs_text(entry: str) -> Rewrite:
    """The error-table entry's refusals say the pages' text (docs_message), not what the service was seen to say."""
    wire = CATALOG.error(entry)

    def rewrite(status: int, body: Any):
        found = _error(body) if status >= 400 else (_output(body).get("code"), _output(body).get("message"))
        if found != (wire["code"], wire["message"]):
            return None
        (body if status >= 400 else _output(body))["message"] = wire["docs_message"]
        return status, body

    return rewrite


def _sse_error_as_http(status: int, content_type: str, body: bytes):
    """A stream request refused as invalid answers HTTP 400 JSON, not an event:error inside a 200 stream."""
    if not content_type.startswith("text/event-stream") or b"event:error" not in body:
        return None
    lines = body.decode().splitlines()
    data = next(line[len("data:"):] for line in lines if line.startswith("data:"))
    code = next(int(line.rsplit("/", 1)[1]) for line in lines if line.startswith(":HTTP_STATUS/"))
    return code, "application/json", data.encode()


def _incremental_ignored(service: FakeDashScope) -> None:
    """parameters.incremental_output is ignored: a stream always repeats every image so far."""
    submit = service.generation.submit

    def wrapped(endpoint, call):
        outcome = submit(endpoint, call)
        if isinstance(outcome.value, SyncResult) and outcome.value.incremental:
            return dataclasses.replace(outcome, value=dataclasses.replace(outcome.value, incremental=False))
        return outcome

    service.generation.submit = wrapped  # type: ignore[method-assign]


def _method_not_allowed(status: int, body: Any):
    """GET on a POST API answers 405 MethodNotAllowed, as web frameworks do, not 400 InvalidParameter."""
    code, message = _error(body)
    if status != 400 or code != "InvalidParameter" or not str(message).startswith("Request method"):
        return None
    return 405, {"request_id": body.get("request_id"), "code": "MethodNotAllowed", "message": "Method Not Allowed"}


def _generic_body_message(status: int, body: Any):
    """A body that is not JSON is refused with the generic InvalidParameter text."""
    if _error(body) != (CATALOG.error("body_invalid")["code"], CATALOG.error("body_invalid")["message"]):
        return None
    body["message"] = CATALOG.error("invalid_parameter")["message"]
    return status, body


def _unknown_model_404(status: int, body: Any):
    """A made-up model answers 404 (as one workspace capture did), not 400."""
    if _error(body) != (CATALOG.error("model_not_exist")["code"], CATALOG.error("model_not_exist")["message"]):
        return None
    return 404, body


def _drop_capacity(status: int, body: Any):
    """The upload policy without capacity_limit_mb (what the SDK reads, not what the service sends)."""
    data = body.get("data") if isinstance(body, dict) else None
    if status != 200 or not isinstance(data, dict):
        return None
    data.pop("capacity_limit_mb", None)
    return status, body


def _policy_for_image_models_only(service: FakeDashScope) -> None:
    """An upload policy is refused (Model not exist) for a model outside the image catalog."""
    policy = service.files.upload_policy

    def wrapped(key, model, base_url, request_id):
        if model and service.catalog.model(model) is None:
            raise DashScopeError.from_catalog(service.catalog, "model_not_exist")
        return policy(key, model, base_url, request_id)

    service.files.upload_policy = wrapped  # type: ignore[method-assign]


def _async_refusal_as_400(status: int, body: Any):
    """The async header where only synchronous calls are served answers 400 InvalidParameter, not 403 AccessDenied."""
    wire = CATALOG.error("async_not_supported")
    if _error(body) != (wire["code"], wire["message"]):
        return None
    body["code"] = "InvalidParameter"
    return 400, body


def _empty_input_as_invalid_parameter(status: int, body: Any):
    """A request without input is refused as InvalidParameter, not BadRequest.EmptyInput."""
    if _error(body)[0] != CATALOG.error("empty_input")["code"]:
        return None
    body["code"] = "InvalidParameter"
    return status, body


def _rate_per_second(service: FakeDashScope) -> None:
    """Per-minute rate limits are read as per second (qwen-image-max: 2 a second, not 2 a minute)."""
    admit = service.generation.admit

    def wrapped(key, request):
        limit = request.model.rate_limit
        if limit.per == "minute":
            model = dataclasses.replace(request.model, rate_limit=dataclasses.replace(limit, per="second"))
            request = dataclasses.replace(request, model=model)
        return admit(key, request)

    service.generation.admit = wrapped  # type: ignore[method-assign]


def _unknown_task_404(status: int, body: Any):
    """An unknown task id answers 404 NotFound, not 200 UNKNOWN."""
    if status != 200 or _output(body).get("task_status") != "UNKNOWN":
        return None
    return 404, {"request_id": body.get("request_id"), "code": "NotFound", "message": "Task not found."}


def _first_message_only(service: FakeDashScope) -> None:
    """More than one message is not refused: the first is used, the others dropped."""
    check = service.generation.check

    def wrapped(endpoint, body, headers, region):
        messages = (body.get("input") or {}).get("messages") if isinstance(body, dict) and isinstance(body.get("input"), dict) else None
        if isinstance(messages, list) and len(messages) > 1:
            body = {**body, "input": {**body["input"], "messages": messages[:1]}}
        return check(endpoint, body, headers, region)

    service.generation.check = wrapped  # type: ignore[method-assign]


@dataclass(frozen=True)
class Mutant:
    description: str
    expected_checks: tuple[str, ...]         # the check named for the defect first (it must catch it), then others that may
    make_app: Callable[[FakeDashScope], ASGIApp]

    @property
    def faithful(self) -> bool:
        return not self.expected_checks


MUTANTS: dict[str, Mutant] = {
    "faithful": Mutant("the fake as it is, with no defect: the suite must pass", (), _patching(lambda service: None)),
    "renamed-field": Mutant(
        "SUCCEEDED task results use image_url instead of url",
        ("response_schema_conformance", "usage_agrees_with_results"),
        _rewriting("GET", TASK_QUERY, _rename_url)),
    "missing-field": Mutant(
        "a synchronous generation success has usage without width",
        ("response_schema_conformance",),
        _rewriting("POST", MULTIMODAL, _drop_usage_width)),
    "wrong-type": Mutant(
        "usage.image_count is a string (\"1\") instead of an integer",
        ("response_schema_conformance", "usage_agrees_with_results"),
        _rewriting(None, ANY_API, _image_count_as_string)),
    "wrong-status": Mutant(
        "task creation answers 201 instead of 200",
        ("status_code_documented", "valid_request_accepted"),
        _rewriting("POST", IMAGE_SYNTHESIS, _created_201)),
    "wrong-error-code": Mutant(
        "a request without a key answers 401 Unauthorized instead of 401 InvalidApiKey",
        ("invalid_request_rejected",),
        _patching(_unauthorized_without_key)),
    "forbidden-transition": Mutant(
        "a poll right after a status change shows the previous status again (RUNNING -> PENDING, SUCCEEDED -> RUNNING)",
        ("status_moves_forward",),
        _patching(_lagging_replica)),
    "inconsistent-metrics": Mutant(
        "task_metrics.SUCCEEDED of a SUCCEEDED task is one less than its url results (FAILED one more)",
        ("usage_agrees_with_results",),
        _rewriting("GET", TASK_QUERY, _metrics_off_by_one)),
    "wrong-image-size": Mutant(
        "explicit sizes are not rounded to multiples of 16 (1033*1032 stays 1033*1032, in usage and in the PNG)",
        ("image_size_obeys_rules", "images_download_as_png"),
        _patching(_size_not_rounded)),
    "cancel-not-pending": Mutant(
        "cancelling a task that is no longer PENDING answers 200 (without cancelling it) instead of 400 UnsupportedOperation",
        ("cancel_only_pending",),
        _rewriting("POST", r"/api/v1/tasks/[^/]+/cancel$", _refused_cancel_succeeds)),
    "no-expiry": Mutant(
        "tasks live 7 days instead of 24 hours: a day-old task answers its data instead of UNKNOWN",
        ("expired_task_is_unknown",),
        _patching(_week_long_tasks)),
    "any-region-key": Mutant(
        "a key of another region is accepted (the key's region is used instead of answering 401 InvalidApiKey)",
        ("wrong_region_key_rejected", "invalid_request_rejected"),
        _patching(_key_of_any_region)),
    "cross-account-leak": Mutant(
        "another account's task (same region) is visible: its real status instead of UNKNOWN",
        ("other_account_cannot_see",),
        _patching(_region_only_ownership)),
    # Against what the real service was observed to do (observations.json), one per kind.
    "list-times-as-strings": Mutant(
        "task list times are date strings, as the pages print them, not epoch milliseconds (task-list-epoch-ms)",
        ("task_list_items_as_observed", "response_schema_conformance"),
        _rewriting("GET", TASK_LIST, _list_times_as_strings)),
    "list-page-size-ignored": Mutant(
        "the task list serves at least 10 tasks a page whatever page_size asks (task-list-envelope)",
        ("task_list_paging",),
        _patching(_page_size_ignored)),
    "list-filters-ignored": Mutant(
        "the task list ignores its status and model_name filters",
        ("task_list_paging",),
        _patching(_list_filters_ignored)),
    "no-request-id-headers": Mutant(
        "no x-request-id or x-dashscope-requestid header: the request id only in the body (request-id-headers)",
        ("request_id_headers",),
        _middleware(HeaderRewrite, path=ANY_API, edit=_without_request_id_headers)),
    "tasks-json-without-charset": Mutant(
        "/tasks answers say application/json without ;charset=UTF-8 (tasks-content-type)",
        ("content_type_as_observed",),
        _middleware(HeaderRewrite, path=TASK_ROUTES, edit=_json_without_charset)),
    "no-sync-task-metric": Mutant(
        "a synchronous success has no output.task_metric (sync-task-metric)",
        ("sync_task_metric",),
        _rewriting("POST", MULTIMODAL, _drop_task_metric)),
    "running-without-metrics": Mutant(
        "a RUNNING task has no task_metrics (running-task-metrics)",
        ("running_task_as_observed",),
        _rewriting("GET", TASK_QUERY, _running_without_metrics)),
    "sync-urls-for-a-day": Mutant(
        "synchronous result URLs are signed for 24 hours, not about 7 days (sync-url-7-days)",
        ("result_url_expiry",),
        _patching(_sync_urls_for_a_day)),
    "task-urls-for-a-week": Mutant(
        "task result URLs expire 7 days after end_time, not 24 hours (async-url-end-plus-24h)",
        ("result_url_expiry",),
        _patching(_task_urls_for_a_week)),
    "cancel-refusal-docs-text": Mutant(
        "a refused cancel says the pages' 'The operation is unsupported on the referee object.' (cancel-not-pending)",
        ("error_message_matches",),
        _rewriting("POST", r"/api/v1/tasks/[^/]+/cancel$", _docs_text("unsupported_operation"))),
    "url-error-old-text": Mutant(
        "a model on the wrong route says the pages' 'url error, please check url!' (url-error-message)",
        ("error_message_matches",),
        _rewriting("POST", GENERATION, _docs_text("url_error"))),
    "moderation-docs-text": Mutant(
        "a task failed by output moderation says the pages' 'Input or output data may contain ...' (moderation-input-output)",
        ("error_message_matches",),
        _rewriting("GET", TASK_QUERY, _docs_text("output_inspection_failed"))),
    "sse-error-as-http-400": Mutant(
        "a stream request refused as invalid answers HTTP 400 JSON, not event:error in a 200 stream (sse-validation-error-in-stream)",
        ("stream_error_in_stream",),
        _middleware(BodyRewrite, method="POST", path=MULTIMODAL, rewrite=_sse_error_as_http)),
    "sse-incremental-ignored": Mutant(
        "incremental_output is ignored: every event of a stream repeats all images so far",
        ("stream_framing",),
        _patching(_incremental_ignored)),
    "wrong-method-405": Mutant(
        "GET on a POST API answers 405 MethodNotAllowed, not 400 InvalidParameter (wrong-method)",
        ("invalid_request_rejected",),
        _rewriting("GET", POST_APIS, _method_not_allowed)),
    "body-not-json-generic": Mutant(
        "a body that is not JSON gets the generic InvalidParameter text, not 'Required body invalid ...' (body-not-json)",
        ("error_message_matches",),
        _rewriting("POST", GENERATION, _generic_body_message)),
    "missing-input-code": Mutant(
        "a request without input is refused InvalidParameter, not BadRequest.EmptyInput (missing-input)",
        ("invalid_request_rejected",),
        _rewriting("POST", GENERATION, _empty_input_as_invalid_parameter)),
    "two-messages-accepted": Mutant(
        "a request with two messages is accepted (the first used), not refused 'messages length only support 1' (messages-count)",
        ("invalid_request_rejected",),
        _patching(_first_message_only)),
    "unknown-model-404": Mutant(
        "a made-up model answers 404, not 400 InvalidParameter 'Model not exist.' (model-not-exist-status)",
        ("invalid_request_rejected",),
        _rewriting("POST", GENERATION, _unknown_model_404)),
    "async-refusal-400": Mutant(
        "the async header where only synchronous calls are served answers 400 InvalidParameter, not 403 AccessDenied "
        "(async-header-on-sync)",
        ("invalid_request_rejected",),
        _rewriting("POST", GENERATION, _async_refusal_as_400)),
    "upload-policy-no-capacity": Mutant(
        "the upload policy has no capacity_limit_mb (upload-policy-fields)",
        ("upload_policy_as_observed",),
        _rewriting("GET", UPLOAD_POLICY, _drop_capacity)),
    "upload-policy-image-models-only": Mutant(
        "no upload policy for a model outside the image catalog: 400 Model not exist (upload-policy-any-model)",
        ("upload_policy_any_model",),
        _patching(_policy_for_image_models_only)),
    "rate-limit-per-second": Mutant(
        "per-minute rate limits are read per second: qwen-image-max takes 2 a second, not 2 a minute (rate-limit-qwen-image-max)",
        ("rate_limit_as_documented",),
        _patching(_rate_per_second)),
    "unknown-task-404": Mutant(
        "an unknown task id answers 404 NotFound, not 200 UNKNOWN (unknown-task)",
        ("unknown_task_is_unknown",),
        _rewriting("GET", TASK_QUERY, _unknown_task_404)),
}


def build(name: str, config: Config | None = None) -> ASGIApp:
    """The ASGI app of mutant `name`, over a fresh FakeDashScope of `config` (the defaults if None)."""
    return MUTANTS[name].make_app(FakeDashScope(config or Config.load()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/mutants.py",
                                     description="Serve the fake with one deliberate defect (see the module docstring).")
    parser.add_argument("name", nargs="?", choices=sorted(MUTANTS), help="which mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants and the checks expected to catch them")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--profile", help="API profile the fake serves: current (default) or 2025-12")
    parser.add_argument("--fast", action="store_true", help="every async task finishes on its first poll")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn the documented rate limits off")
    args = parser.parse_args(argv)
    if args.list:
        width = max(map(len, MUTANTS))
        for name, mutant in MUTANTS.items():
            print(f"{name:<{width}} {mutant.description} [{', '.join(mutant.expected_checks) or 'must pass'}]")
        return 0
    if args.name is None:
        parser.error("a mutant name is required (or --list)")
    import uvicorn

    try:
        config = Config.load(profile=args.profile, rate_limits={"enabled": False} if args.no_rate_limits else None)
        if args.fast:
            config = config.with_fast_tasks()
        app = MUTANTS[args.name].make_app(FakeDashScope(config))
    except (OSError, ValueError) as exc:
        print(f"dashscope-mock mutant: {exc}", file=sys.stderr)
        return 2
    base = f"http://{args.host}:{args.port}"
    ready = (f"dashscope-mock mutant {args.name} ({MUTANTS[args.name].description}): profile {config.profile}, "
             f"serving {base}, base URL {base}/{config.default_region}/api/v1")

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:  # the port is bound: say so, in one line
                print(ready, flush=True)

    Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
