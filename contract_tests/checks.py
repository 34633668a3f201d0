"""The contract's checks: small named functions, registered by a decorator, each reported by
name. A check gets the run's context, the exchange (or a sequence of them) and what was
expected, and raises CheckFailed saying what it expected and what it got."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dashscope_schemas as ds
from dashscope_schemas import evidence

from . import sse
from .exchange import Exchange

FORWARD = {"PENDING": {"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"}, "RUNNING": {"RUNNING", "SUCCEEDED", "FAILED"}}


@dataclass
class Expect:
    """What the docs say the answer to a request must be."""

    accepted: bool
    status: int = 200
    code: str | None = None
    rule: str | None = None       # the catalog rule a rejected request breaks
    field: str | None = None      # the field it concerns
    why: str = ""
    size: tuple[int, int] | None = None   # the images' width and height, when the rules fix them
    images: int | None = None             # how many images a valid request makes
    error: str | None = None              # the error-table entry of a refusal (error-codes.json key)
    model: str | None = None              # the model the expectation is about
    message: str | None = None            # the refusal's text when it is the service's own (else the error entry's)


# How bad a finding is. breaking: a client written to the contract fails (a status, an error code,
# a type, a missing required field, a move the state machine forbids); warning: it likely goes on
# but something it may read changed (an undocumented field, a message text, a header); info: worth
# knowing, not drift (timing that differs from the fake's configuration). `--fail-on breaking`
# makes only breaking findings fail a run; info findings never do.
SEVERITIES = ("breaking", "warning", "info")
# Schema keywords whose failure a client survives: a field the schema does not name.
_WARNING_KEYWORDS = frozenset({"additionalProperties", "unevaluatedProperties"})


class CheckFailed(Exception):
    def __init__(self, message: str, *, field: str | None = None, expected: Any = None, actual: Any = None, evidence: str = "",
                 severity: str | None = None):
        super().__init__(message)
        self.message, self.field, self.expected, self.actual = message, field, expected, actual
        self.evidence = evidence  # where the expectation comes from (docs or an observation); "" = the route's docs
        self.severity = severity  # None: the check's own severity (see `check`)


def route_evidence(catalog: ds.Catalog, endpoint_name: str) -> str:
    """What a route's expectations rest on when a check names nothing finer: the pages its answer
    schema was taken from, and the observations the route follows."""
    endpoint = catalog.endpoints.get(endpoint_name)
    if endpoint is None:
        return "docs: API_NOTES.md"
    docs = evidence.docs_of_schema(endpoint.response_schema) if endpoint.response_schema else f"docs: the {endpoint_name} route"
    return docs + (f"; {evidence.cite(endpoint.evidence)}" if endpoint.evidence else "")


def rule_evidence(catalog: ds.Catalog, expect: Expect) -> str:
    """Where a request's expected answer comes from: the error-table entry (an observation when the
    service was seen to answer so), else the catalog rule and the model's pages."""
    entry = catalog.errors.get(expect.error or "")
    if entry is not None and evidence.evidence_in(entry):
        return evidence.error_evidence(entry)
    model = catalog.model(expect.model)
    pages = ", ".join(model.sources) if model else "the catalog"
    return f"docs: catalog rule {expect.rule or '(valid request)'} ({pages})"


@dataclass
class Context:
    catalog: ds.Catalog
    client: Any = None
    facts: dict[str, Any] = field(default_factory=dict)


CheckFn = Callable[[Context, Exchange, Expect | None], None]
CHECKS: dict[str, CheckFn] = {}
SEVERITY: dict[str, str] = {}  # check name -> the severity of its findings unless a failure says otherwise


def run_checks(reporter: Any, ctx: Context, exchange: Exchange, expect: Expect | None, names: Iterable[str],
               test: str) -> list[tuple[str, CheckFailed]]:
    """The one check runner: each named check on an exchange, every result reported (passed, or
    failed with what was expected and what came); the failures, in order."""
    failures = []
    for name in names:
        try:
            CHECKS[name](ctx, exchange, expect)
        except CheckFailed as failed:
            reporter.failed(name, exchange, failed.message, field=failed.field, expected=failed.expected,
                            actual=failed.actual, test=test,
                            evidence=failed.evidence or route_evidence(ctx.catalog, exchange.endpoint),
                            severity=failed.severity or SEVERITY[name])
            failures.append((name, failed))
        else:
            reporter.passed(name)
    return failures


def check(name: str, severity: str = "breaking") -> Callable[[CheckFn], CheckFn]:
    assert severity in SEVERITIES, severity

    def register(fn: CheckFn) -> CheckFn:
        fn.check_name = name  # type: ignore[attr-defined]
        CHECKS[name] = fn
        SEVERITY[name] = severity
        return fn
    return register


def _body(exchange: Exchange) -> dict:
    return exchange.json if isinstance(exchange.json, dict) else {}


# --- any answer ----------------------------------------------------------------------------------


@check("not_a_server_error")
def not_a_server_error(ctx, exchange, expect):
    if exchange.status >= 500 and not (expect and expect.status == exchange.status):
        raise CheckFailed(f"HTTP {exchange.status}", field="(status)", expected="< 500", actual=exchange.status)


@check("status_code_documented")
def status_code_documented(ctx, exchange, expect):
    endpoint = ctx.catalog.endpoints.get(exchange.endpoint)  # the catalog's plan says what is documented
    allowed = endpoint.statuses if endpoint else None
    if allowed and exchange.status not in allowed:
        raise CheckFailed(f"HTTP {exchange.status} is not a status the docs give for {exchange.endpoint}",
                          field="(status)", expected=sorted(allowed), actual=exchange.status)


@check("response_schema_conformance")
def response_schema_conformance(ctx, exchange, expect):
    endpoint = ctx.catalog.endpoints.get(exchange.endpoint)
    schema = endpoint.response_schema if endpoint else None
    if exchange.status != 200 or schema is None:
        return
    if sse.is_stream(exchange.response_headers):
        return  # an event stream: its events are stream_framing's and stream_error_in_stream's
    if exchange.json is None:
        raise CheckFailed("a 200 answer that is not JSON", field="(body)", expected="JSON", actual=str(exchange.response_body)[:200])
    issues = ds.validate(exchange.json, schema, ctx.catalog.profile)
    if issues:
        first = issues[0]
        raise CheckFailed("; ".join(str(i) for i in issues[:5]), field=first.path or "(document)",
                          expected=schema, actual=first.reason,
                          evidence=evidence.cite(first.evidence) if first.evidence else evidence.docs_of_schema(schema),
                          severity="warning" if all(i.keyword in _WARNING_KEYWORDS for i in issues) else "breaking")


@check("error_envelope")
def error_envelope(ctx, exchange, expect):
    if exchange.status < 400 or exchange.endpoint == "download":
        return
    if exchange.json is None:
        raise CheckFailed("an error answer that is not the JSON envelope", field="(body)",
                          expected="{request_id, code, message}", actual=str(exchange.response_body)[:200])
    issues = ds.validate(exchange.json, "error", ctx.catalog.profile)
    if issues:
        raise CheckFailed("; ".join(map(str, issues[:3])), field=issues[0].path or "(envelope)",
                          expected="{request_id, code, message}", actual=exchange.json)


# --- what a request deserves ---------------------------------------------------------------------


@check("valid_request_accepted")
def valid_request_accepted(ctx, exchange, expect):
    if expect is None or not expect.accepted:
        return
    if exchange.status != 200:
        message = _body(exchange).get("message", "")
        raise CheckFailed(f"a request the docs allow was refused: {exchange.status} {exchange.code}: {message}",
                          field=_field_named_in(message) or expect.field or "(request)",
                          expected="200", actual=f"{exchange.status} {exchange.code}", evidence=rule_evidence(ctx.catalog, expect))


@check("invalid_request_rejected")
def invalid_request_rejected(ctx, exchange, expect):
    if expect is None or expect.accepted:
        return
    if (exchange.status, exchange.code) != (expect.status, expect.code):
        raise CheckFailed(f"breaking {expect.rule} ({expect.why}) must answer {expect.status} {expect.code}",
                          field=expect.field or "(request)", expected=f"{expect.status} {expect.code}",
                          actual=f"{exchange.status} {exchange.code or ''}".strip(), evidence=rule_evidence(ctx.catalog, expect))


# The service's own texts name their field in words (observations size-messages, n-must-be-1 ...).
_FIELDS_OF_SERVICE_TEXTS = {"The size does not match": "parameters.size", "Image area must be": "parameters.size",
                            "num_images_per_prompt": "parameters.n", "Model not exist": "model", "messages length": "input.messages",
                            "No messages found": "input.messages", "The provided URL": "input image", "url error": "model"}


def _field_named_in(message: str) -> str | None:
    """The field a refusal names: the fake's texts start with it ("parameters.n must be ..."),
    the service's name it in words."""
    head = message.split(" ", 1)[0].rstrip(":").strip()
    if head.startswith(("parameters", "input", "model")):
        return head
    return next((field for text, field in _FIELDS_OF_SERVICE_TEXTS.items() if message.startswith(text)), None)


# --- what a success holds ------------------------------------------------------------------------


@check("usage_agrees_with_results")
def usage_agrees_with_results(ctx, exchange, expect):
    body = _body(exchange)
    output, usage = body.get("output") or {}, body.get("usage") or {}
    if exchange.status != 200:
        return
    if "choices" in output:
        images = [c for choice in output["choices"] for c in choice.get("message", {}).get("content", []) if "image" in c]
        if usage.get("image_count") != len(images):
            raise CheckFailed("usage.image_count is not the number of images", field="usage.image_count",
                              expected=len(images), actual=usage.get("image_count"))
        if expect and expect.images is not None and len(images) != expect.images:
            raise CheckFailed("not as many images as n asked for", field="output.choices[0].message.content",
                              expected=expect.images, actual=len(images))
        return
    status = output.get("task_status")
    if status not in ("SUCCEEDED", "FAILED"):
        return
    results = output.get("results") or []
    ok = sum(1 for r in results if "url" in r)
    failed = sum(1 for r in results if "code" in r)
    metrics = output.get("task_metrics")
    if metrics is not None:
        if status == "SUCCEEDED" and (metrics.get("TOTAL"), metrics.get("SUCCEEDED"), metrics.get("FAILED")) != (len(results), ok, failed):
            raise CheckFailed("task_metrics disagree with results", field="output.task_metrics",
                              expected={"TOTAL": len(results), "SUCCEEDED": ok, "FAILED": failed}, actual=metrics)
        if status == "FAILED" and metrics.get("SUCCEEDED") != 0:
            raise CheckFailed("a FAILED task counts successes", field="output.task_metrics.SUCCEEDED", expected=0,
                              actual=metrics.get("SUCCEEDED"))
        if metrics.get("TOTAL") != metrics.get("SUCCEEDED", 0) + metrics.get("FAILED", 0):
            raise CheckFailed("TOTAL is not SUCCEEDED + FAILED", field="output.task_metrics", expected="TOTAL = SUCCEEDED + FAILED",
                              actual=metrics)
    if status == "SUCCEEDED" and usage.get("image_count") != ok:
        raise CheckFailed("usage.image_count is not the number of successful results", field="usage.image_count",
                          expected=ok, actual=usage.get("image_count"))
    if status == "SUCCEEDED" and expect and expect.images is not None and len(results) != expect.images:
        raise CheckFailed("not as many results as n asked for", field="output.results", expected=expect.images, actual=len(results))


@check("image_size_obeys_rules")
def image_size_obeys_rules(ctx, exchange, expect):
    usage = _body(exchange).get("usage") or {}
    endpoint = ctx.catalog.endpoints.get(exchange.endpoint)
    if exchange.status != 200 or expect is None or expect.size is None or not (endpoint and endpoint.is_sync_generation):
        return
    if "width" not in usage or "height" not in usage:
        raise CheckFailed("usage does not say the images' width and height", field="usage.width/height",
                          expected=ds.format_size(expect.size), actual=usage or None)
    actual = (usage.get("width"), usage.get("height"))
    if actual != expect.size:
        raise CheckFailed("usage width*height is not what the size rules give", field="usage.width/height",
                          expected=ds.format_size(expect.size), actual=f"{actual[0]}*{actual[1]}")


@check("images_download_as_png")
def images_download_as_png(ctx, exchange, expect):
    """Each result URL answers a PNG whose size is the one the rules (or usage) give."""
    from PIL import Image

    body = _body(exchange)
    output, usage = body.get("output") or {}, body.get("usage") or {}
    urls = [c["image"] for choice in output.get("choices") or [] for c in choice.get("message", {}).get("content", []) if "image" in c]
    urls += [r["url"] for r in output.get("results") or [] if "url" in r]
    wanted = expect.size if expect and expect.size else ((usage["width"], usage["height"]) if "width" in usage else None)
    made_images = exchange.status == 200 and ("choices" in output or output.get("task_status") == "SUCCEEDED")
    if made_images and not urls:
        raise CheckFailed("a successful answer carries no result URL", field="(result url)", expected="at least one url",
                          actual="none")
    for url in urls[: ctx.facts.get("downloads_per_answer", 2)]:
        got, content = ctx.client.download(url)
        if got.status != 200 or not got.response_headers.get("content-type", "").startswith("image/png"):
            raise CheckFailed("a result URL does not download as a PNG", field="(result url)",
                              expected="200 image/png", actual=f"{got.status} {got.response_headers.get('content-type')}")
        try:
            with Image.open(io.BytesIO(content)) as image:
                size, fmt = image.size, image.format
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "not a PNG"
            raise CheckFailed(f"the result is not a readable image: {exc}", field="(result url)", expected="PNG",
                              actual="unreadable") from exc
        if fmt != "PNG" or (wanted and size != tuple(wanted)):
            raise CheckFailed("the downloaded image is not a PNG of the expected size", field="(result image)",
                              expected=f"PNG {ds.format_size(wanted) if wanted else ''}", actual=f"{fmt} {size[0]}*{size[1]}")


@check("long_prompt_truncated")
def long_prompt_truncated(ctx, exchange, expect):
    """Text over the limit is truncated, not rejected; with prompt_extend off the prompt used fits the limit."""
    limit = ctx.facts.get("prompt_limit")
    if limit is None:
        return
    if exchange.status != 200:
        raise CheckFailed("a prompt over the limit was not accepted (it must be truncated, not refused)", field="input prompt",
                          expected="200 (truncated)", actual=f"{exchange.status} {exchange.code or ''}".strip())
    for result in (_body(exchange).get("output") or {}).get("results") or []:
        actual = result.get("actual_prompt")
        if actual is not None and ctx.facts.get("prompt_extend") is False and len(actual) > limit:
            raise CheckFailed("actual_prompt is longer than the limit", field="output.results[].actual_prompt",
                              expected=f"<= {limit} characters", actual=len(actual))


# --- tasks over time -----------------------------------------------------------------------------


@check("unknown_task_is_unknown")
def unknown_task_is_unknown(ctx, exchange, expect):
    output = _body(exchange).get("output") or {}
    if exchange.status != 200 or output.get("task_status") != "UNKNOWN":
        raise CheckFailed("an unknown task id must answer 200 with task_status UNKNOWN", field="output.task_status",
                          expected="200 UNKNOWN", actual=f"{exchange.status} {output.get('task_status') or exchange.code}",
                          evidence=evidence.cite(("unknown-task",)))
    asked = ctx.facts.get("task_id")
    if asked is not None and output.get("task_id") != asked:
        raise CheckFailed("an unknown task's answer does not name the id asked for", field="output.task_id", expected=asked,
                          actual=output.get("task_id"), evidence=evidence.cite(("unknown-task",)))
    if set(output) - {"task_id", "task_status"}:
        raise CheckFailed("an unknown task's output says more than its id and UNKNOWN", field="output",
                          expected=["task_id", "task_status"], actual=sorted(output), evidence=evidence.cite(("unknown-task",)),
                          severity="warning")


@check("cancel_only_pending")
def cancel_only_pending(ctx, exchange, expect):
    was = ctx.facts.get("status_before_cancel")
    if was == "PENDING" and exchange.status != 200:
        raise CheckFailed("cancelling a PENDING task must succeed", field="(status)", expected=200,
                          actual=f"{exchange.status} {exchange.code}")
    if was != "PENDING" and (exchange.status, exchange.code) != (400, "UnsupportedOperation"):
        raise CheckFailed(f"cancelling a {was} task must be refused", field="(status)",
                          expected="400 UnsupportedOperation", actual=f"{exchange.status} {exchange.code}")


def check_sequence(statuses: list[str]) -> None:
    """The statuses one task showed, in order: forward along the documented moves, terminal ones stick."""
    for before, after in zip(statuses, statuses[1:], strict=False):
        if before in ("SUCCEEDED", "FAILED", "CANCELED") and after != before:
            raise CheckFailed(f"a {before} task became {after}", field="output.task_status", expected=before, actual=after)
        if before in FORWARD and after not in FORWARD[before]:
            raise CheckFailed(f"{before} -> {after} is not a documented transition", field="output.task_status",
                              expected=sorted(FORWARD[before]), actual=after)


@check("status_moves_forward")
def status_moves_forward(ctx, exchange, expect):
    check_sequence(ctx.facts.get("statuses", []))


@check("expired_task_is_unknown")
def expired_task_is_unknown(ctx, exchange, expect):
    output = _body(exchange).get("output") or {}
    if exchange.status != 200 or output.get("task_status") != "UNKNOWN" or "results" in output:
        raise CheckFailed("24 hours after submission a task must answer UNKNOWN, without its data", field="output.task_status",
                          expected="200 UNKNOWN", actual=f"{exchange.status} {output.get('task_status')}")


@check("other_account_cannot_see")
def other_account_cannot_see(ctx, exchange, expect):
    output = _body(exchange).get("output") or {}
    if exchange.endpoint == "task-query" and (exchange.status != 200 or output.get("task_status") != "UNKNOWN"
                                              or set(output) - {"task_id", "task_status"}):
        raise CheckFailed("another account's task must look exactly like an unknown id", field="output",
                          expected={"task_id": "...", "task_status": "UNKNOWN"}, actual=output or exchange.status)
    if exchange.endpoint == "task-list":
        leaked = {d.get("task_id") for d in _body(exchange).get("data") or []} & set(ctx.facts.get("foreign_ids", []))
        if leaked:
            raise CheckFailed("another account's task is listed", field="data[].task_id", expected="absent", actual=sorted(leaked))


@check("wrong_region_key_rejected")
def wrong_region_key_rejected(ctx, exchange, expect):
    if (exchange.status, exchange.code) != (401, "InvalidApiKey"):
        raise CheckFailed("a key of another region must answer 401 InvalidApiKey", field="Authorization",
                          expected="401 InvalidApiKey", actual=f"{exchange.status} {exchange.code}")


ALWAYS = ("not_a_server_error", "status_code_documented", "response_schema_conformance", "error_envelope")


# The checks of what the real service was observed to do register themselves on import.
from . import observed_checks  # noqa: E402,F401  (after everything they use is defined)
from .observed_checks import OBSERVATION_CHECKS  # noqa: E402,F401
