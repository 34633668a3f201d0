"""Checks of what the real service was observed to do (schemas/observations.json), beyond what the
pages print: the schemas accept both, these hold a target to what the service was *seen* to
send, each naming the observation it rests on. Registered in checks.CHECKS like the others."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dashscope_schemas as ds
from dashscope_schemas import evidence

from . import sse
from .checks import CheckFailed, Context, Expect, _body, check
from .exchange import Exchange

# The gateway's header: a refusal carries only it, even on a route whose answers carry more.
GATEWAY_REQUEST_ID_HEADERS = ("x-request-id",)
REQUEST_ID_HEADERS = ("x-request-id", "x-dashscope-requestid")  # every one any route sends
# Task and result times are printed in the service's local time, China Standard Time (no zone is
# written): read so, an async result URL expires exactly 86,400 s after its task's end_time.
SERVICE_TZ = timezone(timedelta(hours=8))
SYNC_URL_SECONDS, SYNC_URL_SLACK = 605_800, 600      # about 7 days from the answer (sync-url-7-days)
# end_time + 24 h (async-url-end-plus-24h), to the second; or a few seconds before: a URL is signed
# when its image is stored, and a recorded 4-image task's URLs expire end_time + 86,397 s.
ASYNC_URL_SECONDS, ASYNC_URL_EARLY, ASYNC_URL_LATE = 86_400, 10, 1
# What the real upload policy announces (upload-policy-fields).
OBSERVED_POLICY = {"expire_in_seconds": 300, "max_file_size_mb": 1024, "capacity_limit_mb": 999_999_999}
LIST_ITEM_IDS = ("api_key_id", "caller_parent_id", "caller_uid", "region", "request_id", "user_api_unique_key")
EPOCH_MS = (10**12, 10**14)  # 2001 .. 5138 in milliseconds: seconds or microseconds fall outside
# The times a task of each status was seen with (recordings of RUNNING and SUCCEEDED tasks).
OBSERVED_TIMES = {"RUNNING": ("submit_time", "scheduled_time"), "SUCCEEDED": ("submit_time", "scheduled_time", "end_time")}
_SERVICE_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?$")
_STREAM_DOCS = "docs: API_NOTES.md [sdk] (streaming), multimodal-generation.stream-chunk.schema.json"


def _cite(*ids: str) -> str:
    return evidence.cite(ids)


def _headers(exchange: Exchange) -> dict[str, str]:
    return {k.lower(): v for k, v in exchange.response_headers.items()}


def _events(exchange: Exchange) -> list[sse.Event]:
    text = exchange.response_body if isinstance(exchange.response_body, str) else ""
    return sse.parse(text) if sse.is_stream(exchange.response_headers) else []


def _request_id(exchange: Exchange) -> str | None:
    """The request id the answer's body gives: the JSON's, or the first event's of a stream."""
    body = exchange.json
    if isinstance(body, dict):
        found = body.get("request_id")
        return found if isinstance(found, str) else None
    events = _events(exchange)
    data = events[0].data if events else None
    return data.get("request_id") if isinstance(data, dict) else None


def service_time(text: Any) -> float | None:
    """Epoch seconds of a task time 'YYYY-MM-DD HH:mm:ss[.SSS]' (service time); None if it is not one."""
    found = _SERVICE_TIME.match(text) if isinstance(text, str) else None
    if not found:
        return None
    year, month, day, hour, minute, second, millis = found.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=SERVICE_TZ)
    except ValueError:
        return None
    return moment.timestamp() + int(millis or 0) / 1000


def _expires(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("Expires")
    return int(values[0]) if values and values[0].isdigit() else None


def _sync_images(output: dict) -> list[str]:
    return [c["image"] for choice in output.get("choices") or [] for c in (choice.get("message") or {}).get("content") or []
            if isinstance(c, dict) and "image" in c]


def _answered_at(ctx: Context, exchange: Exchange) -> tuple[float, float] | None:
    """When the answer was made, as (earliest, latest): the fake's clock read around the request
    (facts "now"), else the answer's Date header (to the second)."""
    now = ctx.facts.get("now")
    if now is not None:
        return (now, now) if isinstance(now, int | float) else (now[0], now[1])
    date = _headers(exchange).get("date")
    if not date:
        return None
    try:
        moment = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
    return moment - 1, moment + 1


@check("request_id_headers", severity="warning")
def request_id_headers(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """The headers that repeat the answer's request_id, as the real route sends them: the
    catalog's list for the route, only the gateway's x-request-id on a refusal, none on the task
    routes and the upload policy."""
    endpoint = ctx.catalog.endpoints.get(exchange.endpoint)
    if endpoint is None or not endpoint.under_api:
        return
    events = _events(exchange)
    refused = exchange.status >= 400 or any(e.event == "error" for e in events)
    names = [n for n in endpoint.request_id_headers if not refused or n in GATEWAY_REQUEST_ID_HEADERS]
    headers = _headers(exchange)
    extra = [n for n in REQUEST_ID_HEADERS if n in headers and n not in names]
    if extra:
        raise CheckFailed(f"the answer carries {', '.join(extra)}, which the real route does not send", field=f"(header {extra[0]})",
                          expected=names, actual=sorted(h for h in headers if h in REQUEST_ID_HEADERS),
                          evidence=_cite("request-id-headers"))
    missing = [n for n in names if n not in headers]
    if missing:
        raise CheckFailed(f"the answer lacks {', '.join(missing)}", field=f"(header {missing[0]})", expected=names,
                          actual=sorted(h for h in headers if "request" in h), evidence=_cite("request-id-headers"))
    body_id = _request_id(exchange)
    wrong = {n: headers[n] for n in names if body_id is not None and headers[n] != body_id}
    if wrong:
        raise CheckFailed("a request-id header is not the body's request_id", field=f"(header {next(iter(wrong))})",
                          expected=body_id, actual=wrong, evidence=_cite("request-id-headers"))


def _media(content_type: str) -> tuple[str, str | None]:
    kind, _, params = content_type.partition(";")
    charset = next((p.split("=", 1)[1].strip().strip('"').upper() for p in params.split(";")
                    if p.strip().lower().startswith("charset=")), None)
    return kind.strip().lower(), charset


@check("content_type_as_observed", severity="warning")
def content_type_as_observed(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """application/json;charset=UTF-8 on /tasks routes, application/json elsewhere, and
    text/event-stream;charset=UTF-8 for a stream (the charset compared without regard to case)."""
    endpoint = ctx.catalog.endpoints.get(exchange.endpoint)
    if endpoint is None or not endpoint.under_api:
        return
    stream = exchange.status == 200 and sse.asked_for_stream(exchange.request_headers) and endpoint.is_sync_generation
    wanted = sse.CONTENT_TYPE if stream else endpoint.content_type
    actual = _headers(exchange).get("content-type", "")
    if _media(actual) != _media(wanted):
        raise CheckFailed("the answer's content type is not the route's", field="(header content-type)", expected=wanted,
                          actual=actual or None,
                          evidence=_cite("sse-validation-error-in-stream" if stream else "tasks-content-type"))


def _refusal(exchange: Exchange) -> tuple[str | None, Any, str]:
    """(code, message, where) of a refusal: an error envelope, the error event of a stream, or a
    FAILED task's output."""
    events = _events(exchange)
    if events:
        data = events[0].data if events[0].event == "error" and isinstance(events[0].data, dict) else {}
        return data.get("code"), data.get("message"), "data.message"
    body = _body(exchange)
    output = body.get("output")
    if exchange.status == 200 and isinstance(output, dict) and output.get("task_status") == "FAILED":
        return output.get("code"), output.get("message"), "output.message"
    return (body.get("code"), body.get("message"), "message") if exchange.status >= 400 else (None, None, "message")


def _template(text: str, facts: dict[str, Any]) -> re.Pattern[str]:
    """An error-table text as a pattern: each {placeholder} is the fact of that name, or any text."""
    parts = re.split(r"\{(\w+)\}", text)
    return re.compile("".join(re.escape(part) if i % 2 == 0 else (re.escape(str(facts[part])) if part in facts else ".+?")
                              for i, part in enumerate(parts)) + "$")


@check("error_message_matches", severity="warning")
def error_message_matches(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A refusal with the expected code says it in the words of the error table (the service's
    own, where it was observed); the generic InvalidParameter entry fixes no text."""
    if expect is None or expect.accepted:
        return
    entry = ctx.catalog.errors.get(expect.error or "")
    wanted = expect.message or (entry["message"] if entry and expect.error != "invalid_parameter" else None)
    code, message, where = _refusal(exchange)
    if wanted is None or code is None or code != expect.code:
        return  # a wrong code (or none) is another check's finding
    if not isinstance(message, str) or not _template(wanted, ctx.facts).match(message):
        # A text a rule gave in the service's words is a size's (the only such rule); else the entry's.
        cited = _cite("size-messages") if expect.message is not None or entry is None else evidence.error_evidence(entry)
        raise CheckFailed(f"{code} says something else than the error table", field=where, expected=wanted, actual=message,
                          evidence=cited)


@check("task_fails_as_expected")
def task_fails_as_expected(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A task the situation makes fail (moderation of its output, a planted failure) ends FAILED with the expected code."""
    if expect is None or expect.code is None:
        return
    output = _body(exchange).get("output") or {}
    if exchange.status != 200 or (output.get("task_status"), output.get("code")) != ("FAILED", expect.code):
        entry = ctx.catalog.errors.get(expect.error or "")
        raise CheckFailed("the task did not fail with the expected code", field="output.code", expected=f"FAILED {expect.code}",
                          actual=f"{exchange.status} {output.get('task_status')} {output.get('code') or ''}".strip(),
                          evidence=evidence.error_evidence(entry) if entry else "")


@check("sync_task_metric", severity="warning")
def sync_task_metric(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A synchronous success carries output.task_metric (singular) beside choices: TOTAL asked,
    SUCCEEDED made, FAILED the rest."""
    endpoint = ctx.catalog.endpoints.get(exchange.endpoint)
    output = _body(exchange).get("output")
    if exchange.status != 200 or not (endpoint and endpoint.is_sync_generation) or not isinstance(output, dict) or "choices" not in output:
        return
    made = len(_sync_images(output))
    asked = expect.images if expect is not None and expect.images else made
    wanted = {"TOTAL": asked, "SUCCEEDED": made, "FAILED": asked - made}
    metric = output.get("task_metric")
    if not isinstance(metric, dict) or {k: metric.get(k) for k in wanted} != wanted:
        raise CheckFailed("output.task_metric is missing or does not count the images" if metric is None
                          else "output.task_metric does not count the images", field="output.task_metric", expected=wanted,
                          actual=metric, evidence=_cite("sync-task-metric"))


@check("result_url_expiry", severity="warning")
def result_url_expiry(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """Result URLs are signed until: a synchronous answer's about 605,800 s after it; a task's
    86,400 s after its end_time (to the second, or a few seconds before)."""
    output = _body(exchange).get("output")
    if exchange.status != 200 or not isinstance(output, dict):
        return
    sync_urls = _sync_images(output)
    task_urls = [r["url"] for r in output.get("results") or [] if isinstance(r, dict) and isinstance(r.get("url"), str)]
    if sync_urls:
        answered = _answered_at(ctx, exchange)
        for url in sync_urls:
            expires = _expires(url)
            if expires is None:
                raise CheckFailed("a result URL has no Expires", field="(result url)", expected="Expires=<epoch>", actual=url[:160],
                                  evidence=_cite("sync-url-7-days"))
            if answered is not None and not (answered[0] + SYNC_URL_SECONDS - SYNC_URL_SLACK <= expires
                                             <= answered[1] + SYNC_URL_SECONDS + SYNC_URL_SLACK):
                raise CheckFailed("a synchronous result URL is not signed for about 7 days", field="(result url Expires)",
                                  expected=f"answer time + {SYNC_URL_SECONDS} s (± {SYNC_URL_SLACK})",
                                  actual=f"answer time + {expires - answered[0]:.0f} s", evidence=_cite("sync-url-7-days"))
    if task_urls and output.get("task_status") == "SUCCEEDED":
        ended = service_time(output.get("end_time"))
        if ended is None:
            raise CheckFailed("a SUCCEEDED task without an end_time to date its URLs from", field="output.end_time",
                              expected="YYYY-MM-DD HH:mm:ss[.SSS]", actual=output.get("end_time"), evidence=_cite("async-url-end-plus-24h"))
        for url in task_urls:
            expires = _expires(url)
            if expires is None or not -ASYNC_URL_EARLY <= expires - (ended + ASYNC_URL_SECONDS) <= ASYNC_URL_LATE:
                raise CheckFailed("a task's result URL does not expire 24 h after its end_time", field="(result url Expires)",
                                  expected=f"end_time + {ASYNC_URL_SECONDS} s (-{ASYNC_URL_EARLY} s .. +{ASYNC_URL_LATE} s)",
                                  actual=f"end_time + {expires - ended:.0f} s" if expires is not None else url[:160],
                                  evidence=_cite("async-url-end-plus-24h"))


@check("running_task_as_observed", severity="warning")
def running_task_as_observed(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A RUNNING task counts its images in task_metrics {TOTAL: n, SUCCEEDED: 0, FAILED: 0}."""
    output = _body(exchange).get("output") or {}
    if exchange.status != 200 or output.get("task_status") != "RUNNING":
        return
    metrics = output.get("task_metrics")
    total = expect.images if expect is not None and expect.images else (metrics or {}).get("TOTAL")
    wanted = {"TOTAL": total, "SUCCEEDED": 0, "FAILED": 0}
    if not isinstance(metrics, dict) or {k: metrics.get(k) for k in wanted} != wanted:
        raise CheckFailed("a RUNNING task without task_metrics counting its images" if metrics is None
                          else "a RUNNING task's task_metrics are not {TOTAL: n, SUCCEEDED: 0, FAILED: 0}",
                          field="output.task_metrics", expected=wanted, actual=metrics, evidence=_cite("running-task-metrics"))


@check("task_times_as_observed", severity="warning")
def task_times_as_observed(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A task's times as the service prints them (with or without milliseconds), there when its
    status was seen with them (RUNNING: submit and scheduled; SUCCEEDED: and end), in order."""
    output = _body(exchange).get("output") or {}
    status = output.get("task_status")
    if exchange.status != 200 or status not in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"):
        return
    needed = OBSERVED_TIMES.get(status, ())
    times: dict[str, float] = {}
    for name in ("submit_time", "scheduled_time", "end_time"):
        if name not in output:
            if name in needed:
                raise CheckFailed(f"a {status} task without {name}", field=f"output.{name}", expected="YYYY-MM-DD HH:mm:ss[.SSS]",
                                  actual=None, evidence=_cite("running-task-metrics", "task-times-without-millis"))
            continue
        parsed = service_time(output[name])
        if parsed is not None:
            times[name] = parsed
        else:
            raise CheckFailed(f"{name} is not a service time", field=f"output.{name}", expected="YYYY-MM-DD HH:mm:ss[.SSS]",
                              actual=output[name], evidence=_cite("task-times-without-millis"), severity="breaking")
    ordered = [times[n] for n in ("submit_time", "scheduled_time", "end_time") if n in times]
    if ordered != sorted(ordered):
        raise CheckFailed("a task's times are out of order", field="output.end_time", expected="submit <= scheduled <= end",
                          actual={n: output[n] for n in times}, evidence=_cite("task-times-without-millis"))


def _epoch_ms_issue(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"not an integer ({type(value).__name__})"
    if not EPOCH_MS[0] <= value < EPOCH_MS[1]:
        return "not epoch milliseconds"
    return None


@check("task_list_items_as_observed")
def task_list_items_as_observed(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """Each listed task: gmt_create, start_time and end_time as integer epoch milliseconds (all
    three on a SUCCEEDED one, as recorded; in order), the caller's ids, and for the tasks the test knows
    (facts "tasks": id -> model, submitted epoch seconds) their model and creation time."""
    data = _body(exchange).get("data")
    if exchange.status != 200 or not isinstance(data, list):
        return
    known = ctx.facts.get("tasks") or {}
    for item in data:
        if not isinstance(item, dict):
            continue
        status = item.get("status")
        needed = ("gmt_create",) + (("start_time", "end_time") if status == "SUCCEEDED" else ())  # as recorded
        for name in ("gmt_create", "start_time", "end_time"):
            if name not in item and name not in needed:
                continue
            issue = "missing" if name not in item else _epoch_ms_issue(item[name])
            if issue:
                raise CheckFailed(f"a listed {status} task's {name} is {issue}", field=f"data[].{name}", expected="epoch milliseconds",
                                  actual=item.get(name), evidence=_cite("task-list-epoch-ms"))
        ordered = [item[n] for n in ("gmt_create", "start_time", "end_time") if n in item]
        if ordered != sorted(ordered):
            raise CheckFailed("a listed task's times are out of order", field="data[].end_time",
                              expected="gmt_create <= start_time <= end_time", actual=ordered, evidence=_cite("task-list-epoch-ms"))
        missing = [n for n in LIST_ITEM_IDS if not isinstance(item.get(n), str) or not item[n]]
        if missing:
            raise CheckFailed(f"a listed task lacks {', '.join(missing)}", field=f"data[].{missing[0]}", expected="a string",
                              actual=item.get(missing[0]), evidence=_cite("task-list-epoch-ms"), severity="warning")
        unique_key, model = item["user_api_unique_key"], item.get("model_name")
        if not unique_key.startswith("apikey:v1:") or (isinstance(model, str) and not unique_key.endswith(f":{model}")):
            raise CheckFailed("a listed task's user_api_unique_key is not apikey:v1:...:<model_name>", field="data[].user_api_unique_key",
                              expected=f"apikey:v1:<group>:<task>:<function>:{model}", actual=unique_key,
                              evidence=_cite("task-list-epoch-ms"), severity="warning")
        mine = known.get(item.get("task_id"))
        if mine is None:
            continue
        if item.get("model_name") != mine["model"]:
            raise CheckFailed("a listed task names another model", field="data[].model_name", expected=mine["model"],
                              actual=item.get("model_name"), evidence=_cite("task-list-epoch-ms"))
        if mine.get("submitted") is not None and abs(item["gmt_create"] - mine["submitted"] * 1000) > 1000:
            raise CheckFailed("a listed task's gmt_create is not when it was submitted", field="data[].gmt_create",
                              expected=round(mine["submitted"] * 1000), actual=item["gmt_create"], evidence=_cite("task-list-epoch-ms"))


def _list_time(text: str) -> float:
    """The list filter's YYYYMMDDhhmmss, in service time."""
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SERVICE_TZ).timestamp()


@check("task_list_paging")
def task_list_paging(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """The list's envelope {total, data, total_page, page_no, page_size, request_id}: the page
    asked for (facts "params"), no more items than page_size, as many as total leaves for the
    page, newest first, each one matching the filters; facts "listed" ids must be on it, and
    "unlisted" ids must not."""
    body = _body(exchange)
    if exchange.status != 200 or not body:
        return
    cite = _cite("task-list-envelope")
    for name in ("total", "total_page", "page_no", "page_size"):
        if isinstance(body.get(name), bool) or not isinstance(body.get(name), int):
            raise CheckFailed(f"the list's {name} is not an integer", field=name, expected="integer", actual=body.get(name), evidence=cite)
    listed = body.get("data")
    data: list[Any] = listed if isinstance(listed, list) else []
    params = {k: str(v) for k, v in (ctx.facts.get("params") or {}).items()}
    for name in ("page_no", "page_size"):
        if name in params and str(body[name]) != params[name]:
            raise CheckFailed(f"the list does not answer the {name} asked for", field=name, expected=int(params[name]),
                              actual=body[name], evidence=cite)
    total, size, page = body["total"], max(body["page_size"], 1), body["page_no"]
    if body["total_page"] != math.ceil(total / size):
        raise CheckFailed("total_page is not total / page_size rounded up", field="total_page", expected=math.ceil(total / size),
                          actual=body["total_page"], evidence=cite)
    wanted = max(0, min(size, total - (page - 1) * size))
    if len(data) != wanted:
        raise CheckFailed(f"{len(data)} tasks on page {page} of size {size} with total {total}", field="data",
                          expected=f"{wanted} items", actual=f"{len(data)} items", evidence=cite)
    created = [d.get("gmt_create") for d in data if isinstance(d, dict)]
    stamps = [c for c in created if isinstance(c, int)]
    if len(stamps) == len(created) and stamps != sorted(stamps, reverse=True):
        raise CheckFailed("the list is not newest first", field="data[].gmt_create", expected="descending", actual=created, evidence=cite)
    window = (_list_time(params["start_time"]) if "start_time" in params else -math.inf,
              _list_time(params["end_time"]) if "end_time" in params else math.inf)
    for item in (d for d in data if isinstance(d, dict)):
        for name in ("status", "model_name", "api_key_id", "region"):
            if name in params and item.get(name) != params[name]:
                raise CheckFailed(f"the {name} filter lets another task through", field=f"data[].{name}", expected=params[name],
                                  actual=item.get(name), evidence=cite)
        made = item.get("gmt_create")
        if isinstance(made, int) and not window[0] * 1000 <= made <= window[1] * 1000:
            raise CheckFailed("the time filter lets another task through", field="data[].gmt_create",
                              expected=f"{params.get('start_time')} .. {params.get('end_time')}", actual=made, evidence=cite)
    ids = {d.get("task_id") for d in data if isinstance(d, dict)}
    missing = [t for t in ctx.facts.get("listed", ()) if t not in ids]
    if missing:
        raise CheckFailed("a task that matches the filters is not listed", field="data[].task_id", expected=missing,
                          actual=sorted(map(str, ids))[:5], evidence=cite)
    extra = [t for t in ctx.facts.get("unlisted", ()) if t in ids]
    if extra:
        raise CheckFailed("a task the filters exclude is listed", field="data[].task_id", expected="absent", actual=extra, evidence=cite)


def _policy_document(data: dict) -> dict | None:
    try:
        document = json.loads(base64.b64decode(str(data.get("policy")), validate=True))
    except (ValueError, binascii.Error):
        return None
    return document if isinstance(document, dict) else None


@check("upload_policy_as_observed", severity="warning")
def upload_policy_as_observed(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """The policy's data as the real one: capacity_limit_mb, 1024 MB a file, 300 s, a policy whose
    content-length-range is [0, max_file_size_mb MiB]; and a top-level request_id."""
    body = _body(exchange)
    data = body.get("data")
    if exchange.status != 200 or not isinstance(data, dict):
        return
    cite = _cite("upload-policy-fields")
    if not isinstance(body.get("request_id"), str):
        raise CheckFailed("the policy answer has no request_id", field="request_id", expected="a string", actual=body.get("request_id"),
                          evidence=cite)
    for name, value in OBSERVED_POLICY.items():
        if data.get(name) != value:
            raise CheckFailed(f"data.{name} is not what the real policy announces", field=f"data.{name}", expected=value,
                              actual=data.get(name), evidence=cite)
    document = _policy_document(data)
    ranges = [c for c in (document or {}).get("conditions") or [] if isinstance(c, list) and c[:1] == ["content-length-range"]]
    wanted = ["content-length-range", 0, OBSERVED_POLICY["max_file_size_mb"] * 1024 * 1024]
    if ranges != [wanted]:
        raise CheckFailed("the policy's content-length-range is not [0, max_file_size_mb MiB]", field="data.policy",
                          expected=wanted, actual=ranges or (document and "no such condition") or "not base64 JSON", evidence=cite)


@check("upload_policy_any_model")
def upload_policy_any_model(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A policy is given for any model of the platform, not only the image models."""
    data = _body(exchange).get("data")
    if exchange.status != 200 or not isinstance(data, dict) or not data.get("policy"):
        raise CheckFailed("no upload policy for a model outside the image catalog", field="model", expected="200 with a policy",
                          actual=f"{exchange.status} {exchange.code or ''}".strip(), evidence=_cite("upload-policy-any-model"))


@check("stream_framing")
def stream_framing(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """An accepted stream: text/event-stream, events id:1..k, event:result, :HTTP_STATUS/200 and
    data chunks of the stream schema; finish_reason stop on the last only, usage (the images'
    count and size) on the last; each image once with incremental_output (facts "incremental"),
    else every chunk holds all images so far."""
    if exchange.status != 200:
        return
    if not sse.is_stream(exchange.response_headers):
        raise CheckFailed("a stream was asked for, the answer is not one", field="(header content-type)", expected=sse.MEDIA_TYPE,
                          actual=_headers(exchange).get("content-type"), evidence=_STREAM_DOCS)
    events = _events(exchange)
    if not events:
        raise CheckFailed("an empty stream", field="(events)", expected="at least one event", actual=0, evidence=_STREAM_DOCS)
    seen: list[list[str]] = []
    for number, event in enumerate(events, 1):
        framing = (event.id, event.event, event.status)
        if framing != (str(number), "result", 200):
            raise CheckFailed(f"event {number} is not framed as id:{number} / event:result / :HTTP_STATUS/200", field="(event framing)",
                              expected=[str(number), "result", 200], actual=list(framing), evidence=_STREAM_DOCS)
        issues = ds.validate(event.data, "multimodal-generation.stream-chunk", ctx.catalog.profile) if isinstance(event.data, dict) \
            else ["not a JSON object"]
        if issues:
            raise CheckFailed(f"event {number}'s data is not a stream chunk: {issues[0]}", field="(event data)",
                              expected="multimodal-generation.stream-chunk", actual=str(event.data)[:200], evidence=_STREAM_DOCS)
        choices = event.data["output"]["choices"]
        reason = choices[0].get("finish_reason") if choices else None
        if (reason == "stop") != (number == len(events)):
            raise CheckFailed(f"finish_reason {reason!r} on event {number} of {len(events)}", field="output.choices[0].finish_reason",
                              expected="stop on the last event only", actual=reason, evidence=_STREAM_DOCS)
        seen.append(_sync_images(event.data["output"]))
    incremental = bool(ctx.facts.get("incremental"))
    if incremental:
        images = [url for chunk in seen for url in chunk]
        if len(set(images)) != len(images):
            raise CheckFailed("incremental_output repeats images", field="output.choices[0].message.content",
                              expected="each image once", actual=[len(c) for c in seen], evidence=_STREAM_DOCS)
    else:
        images = seen[-1]
        if any(later[: len(earlier)] != earlier for earlier, later in zip(seen, seen[1:], strict=False)):
            raise CheckFailed("a cumulative stream drops images it sent before", field="output.choices[0].message.content",
                              expected="every image so far in each event", actual=[len(c) for c in seen], evidence=_STREAM_DOCS)
    if expect is not None and expect.images is not None and len(images) != expect.images:
        raise CheckFailed("the stream does not carry as many images as n asked for", field="output.choices[0].message.content",
                          expected=expect.images, actual=len(images), evidence=_STREAM_DOCS)
    usage = events[-1].data.get("usage")
    wanted: dict[str, Any] = {"image_count": len(images)}
    if expect is not None and expect.size is not None:
        wanted.update(width=expect.size[0], height=expect.size[1])
    if not isinstance(usage, dict) or {k: usage.get(k) for k in wanted} != wanted:
        raise CheckFailed("the last event's usage does not count the images and their size", field="usage", expected=wanted,
                          actual=usage, evidence=_STREAM_DOCS)


@check("stream_error_in_stream")
def stream_error_in_stream(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A request refused as invalid, asked as a stream, answers HTTP 200 text/event-stream with
    one event: id:1, event:error, :HTTP_STATUS/<status>, data {code, message, request_id}."""
    if expect is None or expect.accepted:
        return
    cite = _cite("sse-validation-error-in-stream")
    got = f"{exchange.status} {_headers(exchange).get('content-type', '')}"
    if exchange.status != 200 or not sse.is_stream(exchange.response_headers):
        raise CheckFailed("a refusal of a stream request is not inside a stream", field="(status)",
                          expected=f"200 {sse.CONTENT_TYPE}", actual=f"{got} {exchange.code or ''}".strip(), evidence=cite)
    events = _events(exchange)
    first = events[0] if events else None
    data = first.data if first is not None and isinstance(first.data, dict) else {}
    actual = [len(events), first.id, first.event, first.status, data.get("code")] if first else [0]
    if actual != [1, "1", "error", expect.status, expect.code] or not all(isinstance(data.get(k), str) for k in ("message", "request_id")):
        raise CheckFailed("a stream refusal is not one event id:1 / event:error / :HTTP_STATUS/<status> / data {code, message, request_id}",
                          field="(event framing)", expected=[1, "1", "error", expect.status, expect.code], actual=actual, evidence=cite)


@check("rate_limit_as_documented")
def rate_limit_as_documented(ctx: Context, exchange: Exchange, expect: Expect | None) -> None:
    """A burst of a model's requests (on a fake, at one instant of its clock): the first `limit`
    accepted, the next refused 429 Throttling.RateQuota, still refused when less than one
    request's share of the period has passed, accepted again after it (facts "phase": accept or
    refuse)."""
    phase = ctx.facts.get("phase")
    model = ctx.catalog.model(exchange.model or "")
    cited = _cite(*[i for i in (model.evidence if model else ()) if i.startswith("rate-limit")]) if model else ""
    if phase == "accept" and exchange.status == 429:
        raise CheckFailed(f"refused within {exchange.model}'s documented rate ({ctx.facts.get('why')})", field="(rate limit)",
                          expected="200", actual=f"429 {exchange.code}", evidence=cited or "docs: the rate-limit page [rate]")
    if phase == "refuse" and (exchange.status, exchange.code) != (429, "Throttling.RateQuota"):
        raise CheckFailed(f"accepted beyond {exchange.model}'s documented rate ({ctx.facts.get('why')})", field="(rate limit)",
                          expected="429 Throttling.RateQuota", actual=f"{exchange.status} {exchange.code or ''}".strip(),
                          evidence=cited or "docs: the rate-limit page [rate]")


# Which checks notice a target that does not do what each followed (or agreed) observation says:
# tests/test_contract_mutations.py holds every such row to at least one existing check here.
OBSERVATION_CHECKS: dict[str, tuple[str, ...]] = {
    "task-list-epoch-ms": ("task_list_items_as_observed", "response_schema_conformance"),
    "task-list-envelope": ("task_list_paging",),
    "sync-task-metric": ("sync_task_metric",),
    "sync-url-7-days": ("result_url_expiry",),
    "async-url-end-plus-24h": ("result_url_expiry",),
    "running-task-metrics": ("running_task_as_observed", "task_times_as_observed"),
    "task-times-without-millis": ("task_times_as_observed", "response_schema_conformance"),
    "unknown-task": ("unknown_task_is_unknown",),
    "async-header-on-sync": ("invalid_request_rejected", "error_message_matches"),
    "cancel-not-pending": ("cancel_only_pending", "error_message_matches"),
    "upload-policy-fields": ("upload_policy_as_observed",),
    "upload-policy-any-model": ("upload_policy_any_model",),
    "request-id-headers": ("request_id_headers",),
    "tasks-content-type": ("content_type_as_observed",),
    "url-error-message": ("invalid_request_rejected", "error_message_matches"),
    "moderation-input-output": ("task_fails_as_expected", "error_message_matches"),
    "sse-validation-error-in-stream": ("stream_error_in_stream", "content_type_as_observed"),
    "wrong-method": ("invalid_request_rejected", "error_message_matches"),
    "image-url-not-valid": ("invalid_request_rejected", "error_message_matches"),
    "missing-model": ("invalid_request_rejected", "error_message_matches"),
    "missing-input": ("invalid_request_rejected", "error_message_matches"),
    "n-must-be-1": ("invalid_request_rejected", "error_message_matches"),
    "messages-count": ("invalid_request_rejected", "error_message_matches"),
    "body-not-json": ("invalid_request_rejected", "error_message_matches"),
    "image-generation-route": ("valid_request_accepted", "invalid_request_rejected", "error_message_matches"),
    "rate-limit-qwen-image-max": ("rate_limit_as_documented",),
    "size-messages": ("invalid_request_rejected", "error_message_matches"),
    "model-not-exist-status": ("invalid_request_rejected", "error_message_matches"),
}
