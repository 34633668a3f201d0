"""End to end through the official, unmodified `dashscope` SDK: scenarios (failed and partially
failed tasks, refusals, 503s, dropped connections, garbage bodies, moderation, latency), real rate
limits, and usage / free-tier-only accounting.

The SDK is only pointed at the live fake (dashscope.base_http_api_url) and given demo keys.
Scenarios are added through the admin API, exactly as a user of the fake would. Nothing here
waits on the wall clock: time-based behaviour follows the fake's virtual clock, and the SDK's
polling sleep (in dashscope.client.base_api) is redirected to advance that clock.
"""

from __future__ import annotations

import httpx
import pytest
import requests
from dashscope import ImageSynthesis, MultiModalConversation
from dashscope_schemas import output_size
from helpers import freeze
from sdk_helpers import (
    CATALOG,
    EDIT_PROMPT,
    ERRORS,
    KEY_A,
    KEY_A_SG,
    KEY_B,
    LANDSCAPE_URL,
    PROMPT,
    add_scenario,
    edit_messages,
    png_size,
    result_images,
    scenario_state,
    service_time,
    text_messages,
    usage_line,
    usage_report,
)

# --- 3-4. failed and partially failed tasks -----------------------------------------------------


def test_task_failed_once_then_the_next_call_succeeds(live, sdk, virtual_sleep):
    scenario = add_scenario(live, {"endpoint": "text2image"},
                            {"type": "task_failed", "error": "data_inspection_failed"}, times=1)
    failed = ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    assert failed.status_code == 200  # a FAILED task is still a 200 answer of the task API
    assert failed.output.task_status == "FAILED"
    assert failed.output["code"] == "DataInspectionFailed"
    assert failed.output["message"] == ERRORS["data_inspection_failed"]["message"]
    assert failed.output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 1}
    assert failed.output.results == []
    assert scenario_state(live, scenario["id"])["remaining"] == 0

    again = ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    assert again.output.task_status == "SUCCEEDED"
    assert again.output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    assert again.usage.image_count == 1


def test_partial_failure_wan25(live, sdk, virtual_sleep):
    add_scenario(live, {"endpoint": "image2image", "model": "wan2.5-i2i-preview"},
                 {"type": "partial_failure", "failed": 1}, times=1)
    done = ImageSynthesis.call(model="wan2.5-i2i-preview", prompt=EDIT_PROMPT, images=[LANDSCAPE_URL], n=3,
                               api_key=KEY_A)
    assert done.status_code == 200, (done.code, done.message)
    assert done.output.task_status == "SUCCEEDED"  # at least one image made it
    assert done.output["task_metrics"] == {"TOTAL": 3, "SUCCEEDED": 2, "FAILED": 1}
    assert done.usage.image_count == 2
    results = done.output.results
    assert len(results) == 3
    ok = [r for r in results if "code" not in r]
    failed = [r for r in results if "code" in r]
    assert len(ok) == 2 and all(r.url for r in ok)
    assert [(r["code"], r["message"]) for r in failed] == [
        ("InternalError.Timeout", ERRORS["internal_timeout"]["message"])]
    # The wire entry has no url; the SDK's ImageSynthesisResult fills in url="" itself.
    assert failed[0].url == ""
    expected = output_size(CATALOG.model("wan2.5-i2i-preview").size_rule, None, (1600, 900))
    assert [png_size(r.url) for r in ok] == [expected, expected]


# --- 5. refused at submission --------------------------------------------------------------------


@pytest.mark.parametrize("error, status, code", [
    ("rate_quota", 429, "Throttling.RateQuota"),
    ("arrearage", 400, "Arrearage"),
    ("internal_error", 500, "InternalError"),
])
def test_rejected_at_submission(live, sdk, error, status, code):
    add_scenario(live, {"endpoint": "text2image"}, {"type": "reject", "error": error}, times=1)
    refused = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    assert (refused.status_code, refused.code, refused.message) == (status, code, ERRORS[error]["message"])
    assert refused.output is None
    # Nothing was created, and the scenario is used up: the next submission is accepted.
    assert ImageSynthesis.list(api_key=KEY_A).output["total"] == 0
    accepted = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    assert (accepted.status_code, accepted.output.task_status) == (200, "PENDING")


# --- 6. a real rate limit -------------------------------------------------------------------------


def test_image_max_two_per_minute_per_account(live, sdk, monkeypatch):
    monkeypatch.setattr(live.service, "config", live.service.config.replace(
        rate_limits={"enabled": True, "scale": 1.0, "task_api_per_second": 20}))
    limit = CATALOG.model("qwen-image-max").rate_limit
    assert (limit.requests, limit.per) == (2, "minute")
    freeze(live)  # the bucket refills on the fake's clock only

    first, second, third = (MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A)
                            for _ in range(3))
    assert [first.status_code, second.status_code] == [200, 200]
    assert (third.status_code, third.code, third.message) == (429, "Throttling.RateQuota", ERRORS["rate_quota"]["message"])

    # Another account has its own bucket.
    other = MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_B)
    assert other.status_code == 200

    # 30 s refill one request (2 per 60 s); 60 s more refill the whole bucket.
    live.service.clock.advance(30)
    assert MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A).status_code == 200
    assert MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A).status_code == 429
    live.service.clock.advance(60)
    again = MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A)
    assert again.status_code == 200, (again.code, again.message)
    assert len(result_images(again)) == 1


# --- 7-9. transport faults -------------------------------------------------------------------------


def test_wait_retries_503_on_task_query(live, sdk, virtual_sleep):
    scenario = add_scenario(live, {"endpoint": "task-query"}, {"type": "unavailable"}, times=2)
    done = ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    assert done.status_code == 200, (done.code, done.message)
    assert done.output.task_status == "SUCCEEDED"
    assert done.usage.image_count == 1
    state = scenario_state(live, scenario["id"])
    assert (state["applied"], state["remaining"]) == (2, 0)


def test_503_on_fetch_as_the_sdk_reports_it(live, sdk):
    freeze(live)
    created = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    add_scenario(live, {"endpoint": "task-query"}, {"type": "unavailable"}, times=1)
    fetched = ImageSynthesis.fetch(created.output.task_id, api_key=KEY_A)
    wire = ERRORS["service_unavailable"]
    assert (fetched.status_code, fetched.code, fetched.message) == (503, wire["code"], wire["message"])
    assert ImageSynthesis.fetch(created.output.task_id, api_key=KEY_A).output.task_status == "PENDING"


def test_dropped_connection_once_is_retried_by_the_sdk(live, sdk):
    scenario = add_scenario(live, {"endpoint": "multimodal-generation"}, {"type": "drop_connection"}, times=1)
    response = MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A)
    # _send_with_retry resends once on a ConnectionError: the second attempt gets through.
    assert response.status_code == 200, (response.code, response.message)
    assert len(result_images(response)) == 1
    state = scenario_state(live, scenario["id"])
    assert (state["applied"], state["remaining"]) == (1, 0)


def test_dropped_connection_twice_fails_the_call(live, sdk):
    scenario = add_scenario(live, {"endpoint": "multimodal-generation"}, {"type": "drop_connection"}, times=2)
    with pytest.raises(requests.exceptions.ConnectionError):
        MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A)
    state = scenario_state(live, scenario["id"])
    assert (state["applied"], state["remaining"]) == (2, 0)
    # The fault is over: the same call works.
    assert MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A).status_code == 200


def test_malformed_200_body_raises_in_the_sdk(live, sdk):
    add_scenario(live, {"endpoint": "multimodal-generation"}, {"type": "malformed_body", "status": 200}, times=1)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A)


def test_malformed_502_body_becomes_code_unknown(live, sdk):
    add_scenario(live, {"endpoint": "multimodal-generation"}, {"type": "malformed_body", "status": 502}, times=1)
    response = MultiModalConversation.call(model="qwen-image-max", messages=text_messages(), api_key=KEY_A)
    assert response.status_code == 502
    assert response.code == "Unknown"
    # The SDK keeps the non-JSON body as the message.
    assert response.message.startswith("<html><head><title>502 Bad Gateway</title>")
    assert response.output is None


# --- 10-11. moderation and latency on tasks -------------------------------------------------------


def test_output_moderation_fails_after_running(live, sdk):
    add_scenario(live, {"endpoint": "text2image"}, {"type": "output_moderation"}, times=1)
    freeze(live)
    created = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    assert (created.status_code, created.output.task_status) == (200, "PENDING")
    task_id = created.output.task_id

    live.service.clock.advance(2)  # past the 1 s PENDING phase: it runs like any task
    assert ImageSynthesis.fetch(task_id, api_key=KEY_A).output.task_status == "RUNNING"

    live.service.clock.advance(20)  # past the 15 s RUNNING phase: the output is refused
    done = ImageSynthesis.fetch(task_id, api_key=KEY_A)
    assert done.status_code == 200
    assert done.output.task_status == "FAILED"
    # The output side's own words (observation moderation-input-output).
    assert (done.output["code"], done.output["message"]) == ("DataInspectionFailed", "Output data may contain inappropriate content.")
    assert done.output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 1}
    assert done.output.results == []
    assert done.usage is None


def test_latency_keeps_a_task_pending(live, sdk):
    add_scenario(live, {"endpoint": "text2image"}, {"type": "latency", "pending_seconds": 100}, times=1)
    freeze(live)
    created = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A)
    task_id = created.output.task_id

    live.service.clock.advance(50)
    assert ImageSynthesis.fetch(task_id, api_key=KEY_A).output.task_status == "PENDING"
    live.service.clock.advance(120)  # 170 s in: 1 + 100 s pending, 15 s running are over
    done = ImageSynthesis.fetch(task_id, api_key=KEY_A)
    assert done.output.task_status == "SUCCEEDED"
    queued = service_time(done.output["scheduled_time"]) - service_time(done.output["submit_time"])
    ran = service_time(done.output["end_time"]) - service_time(done.output["scheduled_time"])
    assert (queued.total_seconds(), ran.total_seconds()) == (101, 15)


# --- 12. usage, prices and the free tier ----------------------------------------------------------


def test_usage_counts_successful_images_only_and_prices_them(live, sdk):
    model = CATALOG.model("qwen-image-edit-plus")
    price_sg, free_sg = model.price_per_image["ap-southeast-1"], model.free_quota_images["ap-southeast-1"]
    price_bj, free_bj = model.price_per_image["cn-beijing"], model.free_quota_images["cn-beijing"]
    assert (price_sg, free_sg, free_bj) == (0.03, 100, 0)  # what the pages say

    # Singapore, account a: 16 * 6 = 96 images, then 5 of 6 (one fails), then a failed call.
    sdk("ap-southeast-1")
    for _ in range(16):
        made = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL), n=6,
                                           api_key=KEY_A_SG)
        assert made.usage["image_count"] == 6
    add_scenario(live, {"endpoint": "multimodal-generation"}, {"type": "partial_failure", "failed": 1}, times=1)
    partial = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL), n=6,
                                          api_key=KEY_A_SG)
    assert (partial.status_code, partial.usage["image_count"], len(result_images(partial))) == (200, 5, 5)
    add_scenario(live, {"endpoint": "multimodal-generation"},
                 {"type": "task_failed", "error": "data_inspection_failed"}, times=1)
    refused = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL), n=6,
                                          api_key=KEY_A_SG)
    assert (refused.status_code, refused.code) == (400, "DataInspectionFailed")

    # Beijing, account b: no free quota there, every image is paid.
    sdk("cn-beijing")
    paid = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL), n=2,
                                       api_key=KEY_B)
    assert paid.status_code == 200

    report = usage_report(live)
    singapore = usage_line(report, "a", "ap-southeast-1", "qwen-image-edit-plus")
    assert singapore["images"] == 101           # 96 + 5: the failed image and the failed call are free
    assert singapore["free_images"] == free_sg  # the first 100 were free
    assert singapore["free_quota_left"] == 0
    assert singapore["cost_usd"] == pytest.approx((101 - free_sg) * price_sg)
    beijing = usage_line(report, "b", "cn-beijing", "qwen-image-edit-plus")
    assert (beijing["images"], beijing["free_images"]) == (2, 0)
    assert beijing["cost_usd"] == pytest.approx(2 * price_bj)
    # Nobody else used anything.
    assert len(report["usage"]) == 2
    assert report["free_tier_only"] == []


def test_free_tier_only_refuses_once_the_free_quota_is_gone(live, sdk):
    enabled = httpx.post(live.origin + "/__admin/usage/free-tier-only",
                         json={"account": "demo-account-a", "enabled": True}, timeout=10)
    assert enabled.status_code == 200
    assert enabled.json() == {"free_tier_only": ["demo-account-a"]}

    # Beijing: qwen-image-edit-plus has no free quota at all, so account a is refused at once.
    refused = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL),
                                          api_key=KEY_A)
    assert (refused.status_code, refused.code) == (403, "AllocationQuota.FreeTierOnly")
    assert refused.message == ERRORS["free_tier_only"]["message"]
    # Account b is not in that mode.
    assert MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL),
                                       api_key=KEY_B).status_code == 200
    # Singapore still has account a's 100 free images: allowed there, and booked as free.
    sdk("ap-southeast-1")
    free = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL),
                                       api_key=KEY_A_SG)
    assert free.status_code == 200, (free.code, free.message)
    report = usage_report(live)
    assert report["free_tier_only"] == ["demo-account-a"]
    line = usage_line(report, "a", "ap-southeast-1", "qwen-image-edit-plus")
    assert (line["images"], line["free_images"], line["free_quota_left"], line["cost_usd"]) == (1, 1, 99, 0.0)
    assert usage_line(report, "a", "cn-beijing", "qwen-image-edit-plus") is None
