"""The checks of what the real service was observed to do (contract_tests/observed_checks.py),
offline: every real recorded answer they apply to passes them (they hold a target to the
service, so the service itself must pass), and a real answer doctored the way a drifting server
would answer fails the check named for it."""

from __future__ import annotations

import base64
import copy
import json

import dashscope_schemas as ds
import pytest
from helpers import FIXTURES

from contract_tests import sse
from contract_tests.cassette import load
from contract_tests.checks import CHECKS, CheckFailed, Context, Expect
from contract_tests.exchange import Exchange

CATALOG = ds.load_catalog()
REAL = {e.notes["name"]: e for e in load(FIXTURES / "real")}
# x-request-id arrived on the gateway's answers about 2024-11 (observation request-id-headers).
HEADERS_SINCE = "2024-11"
CANCEL_REFUSED = Expect(False, 400, "UnsupportedOperation", error="unsupported_operation")
STREAM_REFUSED = Expect(False, 400, "InvalidParameter")


def _run(name: str, exchange: Exchange, expect: Expect | None = None, **facts) -> CheckFailed | None:
    try:
        CHECKS[name](Context(CATALOG, None, facts), exchange, expect)
    except CheckFailed as failed:
        return failed
    return None


def _applicable(exchange: Exchange) -> list[tuple[str, Expect | None, dict]]:
    """The observed checks a recorded exchange can be held to, with what they need."""
    name, found = exchange.notes["name"], []
    endpoint = CATALOG.endpoints.get(exchange.endpoint)
    if endpoint is not None:
        found.append(("content_type_as_observed", None, {}))
        if exchange.notes["recorded"] >= HEADERS_SINCE or not endpoint.generates:
            found.append(("request_id_headers", None, {}))
    found += [(check, None, {}) for check in ("running_task_as_observed", "task_times_as_observed", "result_url_expiry",
                                              "sync_task_metric", "task_list_items_as_observed", "upload_policy_as_observed")]
    if exchange.endpoint == "task-list":
        found.append(("task_list_paging", None, {"params": {"page_no": 1, "page_size": 10}}))
    if name == "task-query-unknown":
        found.append(("unknown_task_is_unknown", None, {"task_id": "1111"}))
    if name == "task-cancel-not-pending":
        found.append(("error_message_matches", CANCEL_REFUSED, {}))
    if name == "sse-validation-error":
        found.append(("stream_error_in_stream", STREAM_REFUSED, {}))
    return found


@pytest.mark.parametrize("name", sorted(REAL))
def test_every_real_answer_passes_the_observed_checks(name):
    exchange = REAL[name]
    failures = {check: _run(check, exchange, expect, **facts) for check, expect, facts in _applicable(exchange)}
    assert not {k: v.message for k, v in failures.items() if v}, failures


def _doctored(name: str) -> Exchange:
    return copy.deepcopy(REAL[name])


def test_list_times_as_strings_fail():
    listing = _doctored("task-list")
    listing.response_body["data"][0]["gmt_create"] = "2024-03-01 10:38:04.485"
    failed = _run("task_list_items_as_observed", listing)
    assert failed and failed.field == "data[].gmt_create" and "task-list-epoch-ms" in failed.evidence


def test_list_times_in_seconds_fail():
    listing = _doctored("task-list")
    item = listing.response_body["data"][0]
    item["gmt_create"], item["start_time"], item["end_time"] = (item[k] // 1000 for k in ("gmt_create", "start_time", "end_time"))
    assert "not epoch milliseconds" in _run("task_list_items_as_observed", listing).message


def test_a_running_task_without_metrics_fails():
    running = _doctored("task-query-running")
    del running.response_body["output"]["task_metrics"]
    assert _run("running_task_as_observed", running).field == "output.task_metrics"


def test_a_cancel_refusal_in_the_pages_words_fails():
    refused = _doctored("task-cancel-not-pending")
    refused.response_body["message"] = CATALOG.error("unsupported_operation")["docs_message"]
    failed = _run("error_message_matches", refused, CANCEL_REFUSED)
    assert failed and "cancel-not-pending" in failed.evidence


def test_a_message_with_a_placeholder_is_a_pattern():
    refused = Exchange("GET", "http://x/api/v1/tasks/1/cancel", "task-cancel", {}, None, 400, {},
                       {"request_id": "r", "code": "InvalidParameter", "message": "Request method 'GET' is not supported."})
    wrong_method = Expect(False, 400, "InvalidParameter", error="method_not_supported")
    assert _run("error_message_matches", refused, wrong_method, method="GET") is None
    assert _run("error_message_matches", refused, wrong_method) is None  # any method, without the fact
    assert _run("error_message_matches", refused, wrong_method, method="PUT") is not None


def test_a_stream_refusal_as_plain_json_fails():
    stream = _doctored("sse-validation-error")
    data = sse.parse(stream.response_body)[0].data
    as_json = Exchange(stream.method, stream.url, "multimodal-generation", {"X-DashScope-SSE": "enable"}, stream.request_body, 400,
                       {"content-type": "application/json"}, data)
    assert "not inside a stream" in _run("stream_error_in_stream", as_json, STREAM_REFUSED).message
    spaced = _doctored("sse-validation-error")
    spaced.response_body = spaced.response_body.replace("event:error", "event: error")
    assert _run("stream_error_in_stream", spaced, STREAM_REFUSED) is not None


def test_an_upload_policy_without_its_capacity_or_range_fails():
    policy = _doctored("upload-policy")
    del policy.response_body["data"]["capacity_limit_mb"]
    assert _run("upload_policy_as_observed", policy).field == "data.capacity_limit_mb"
    narrower = _doctored("upload-policy")
    document = json.loads(base64.b64decode(narrower.response_body["data"]["policy"]))
    document["conditions"] = [c for c in document["conditions"] if not (isinstance(c, list) and c[:1] == ["content-length-range"])]
    narrower.response_body["data"]["policy"] = base64.b64encode(json.dumps(document).encode()).decode()
    assert _run("upload_policy_as_observed", narrower).field == "data.policy"


def test_sync_answers_without_task_metric_or_a_week_of_url_fail():
    answer = _doctored("multimodal-generation-qwen-image-max")
    answered = 1781172774  # the recording's Date header
    assert _run("result_url_expiry", answer, now=answered) is None
    del answer.response_body["output"]["task_metric"]
    assert _run("sync_task_metric", answer).field == "output.task_metric"
    assert _run("result_url_expiry", answer, now=answered + 6 * 86_400) is not None  # signed for a day only, as it were


def test_task_urls_that_outlive_their_day_fail():
    succeeded = _doctored("task-query-succeeded-image-generation")
    assert _run("result_url_expiry", succeeded) is None
    for result in succeeded.response_body["output"]["results"]:
        result["url"] = result["url"].replace("Expires=1709475741", "Expires=1710080541")  # 7 days
    assert "24 h after its end_time" in _run("result_url_expiry", succeeded).message


def test_missing_request_id_headers_fail_and_extra_ones_too():
    sync = _doctored("multimodal-generation-qwen-image-max")
    del sync.response_headers["x-dashscope-requestid"]
    assert _run("request_id_headers", sync).field == "(header x-dashscope-requestid)"
    listing = _doctored("task-list")
    listing.response_headers["x-request-id"] = listing.response_body["request_id"]
    assert "does not send" in _run("request_id_headers", listing).message


def test_tasks_json_without_charset_fails():
    listing = _doctored("task-list")
    listing.response_headers["content-type"] = "application/json"
    assert _run("content_type_as_observed", listing).field == "(header content-type)"
    listing.response_headers["content-type"] = "application/json; charset=utf-8"  # the same, spelt otherwise
    assert _run("content_type_as_observed", listing) is None
