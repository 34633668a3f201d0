"""End to end: the official, unmodified `dashscope` SDK against the live fake on loopback.

The SDK is only pointed at the fake (dashscope.base_http_api_url) and given demo keys. Nothing
here waits on the wall clock: the fake's time-based behaviour (task phases, 24-hour expiry) is
driven by its virtual clock, and the SDK's polling sleep is redirected to advance that clock.
"""

from __future__ import annotations

import re

import dashscope
import dashscope.common.api_key as sdk_api_key
import httpx
import pytest
from dashscope import ImageSynthesis, MultiModalConversation
from dashscope.common.error import AuthenticationError
from dashscope_schemas import load_catalog, output_size, parse_size
from helpers import PATHS, demo_key, freeze
from sdk_helpers import (
    EDIT_PROMPT,
    KEY_A,
    KEY_A_SG,
    KEY_B,
    LANDSCAPE_URL,
    PROMPT,
    documented_timing,
    edit_messages,
    png_data_uri,
    png_size,
    result_images,
    submit,
)

CATALOG = load_catalog()
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")  # YYYY-MM-DD HH:mm:ss.SSS
DAY = 24 * 3600

KEY_A2 = demo_key("a", n=2)        # account a, Beijing, key 2
# The fake never downloads input URLs; it reads the size a CDN-style file name announces.
PORTRAIT_URL = "https://img.example.com/i/photo-tps-1104-1472.webp"


# --- async text-to-image: the task life cycle ---------------------------------------------------


def test_async_call_then_fetch_walks_pending_running_succeeded(live, sdk):
    documented_timing(live, "qwen-image-plus", pending=1, running=15)
    freeze(live)
    created = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, size="1328*1328", n=1, api_key=KEY_A)
    assert created.status_code == 200
    assert created.output.task_status == "PENDING"
    task_id = created.output.task_id
    assert task_id

    assert ImageSynthesis.fetch(created, api_key=KEY_A).output.task_status == "PENDING"

    live.service.clock.advance(2)  # past the 1 s PENDING phase
    running = ImageSynthesis.fetch(task_id, api_key=KEY_A)
    assert running.status_code == 200
    assert running.output.task_status == "RUNNING"

    live.service.clock.advance(20)  # past the 15 s RUNNING phase
    done = ImageSynthesis.fetch(task_id, api_key=KEY_A)
    assert done.status_code == 200
    assert done.output.task_id == task_id
    assert done.output.task_status == "SUCCEEDED"
    assert len(done.output.results) == 1
    assert done.output.results[0]["orig_prompt"] == PROMPT
    assert png_size(done.output.results[0].url) == (1328, 1328)
    assert done.usage.image_count == 1
    assert done.output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    for field in ("submit_time", "scheduled_time", "end_time"):
        assert TIME_FORMAT.match(done.output[field]), (field, done.output[field])
    # The times are in order: submitted, scheduled 1 s later, ended 15 s after that.
    assert done.output["submit_time"] < done.output["scheduled_time"] < done.output["end_time"]


def test_wait_and_call_poll_on_the_virtual_clock(live, sdk, virtual_sleep):
    documented_timing(live, "qwen-image-plus", pending=1, running=15)
    start = freeze(live)
    task_id = submit()
    waited = ImageSynthesis.wait(task_id, api_key=KEY_A)
    assert waited.status_code == 200
    assert waited.output.task_id == task_id
    assert waited.output.task_status == "SUCCEEDED"
    # The SDK really polled through the 16 s of the task, in virtual time (1, 2, 2, 2, 4, 4, 4, ...).
    assert sum(virtual_sleep.slept) >= 16
    assert live.service.clock.now() - start == pytest.approx(sum(virtual_sleep.slept))

    called = ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT, size="1104*1472", api_key=KEY_A)
    assert called.status_code == 200
    assert called.output.task_status == "SUCCEEDED"
    assert called.output.task_id != task_id
    assert called.usage.image_count == 1
    assert len(called.output.results) == 1
    assert png_size(called.output.results[0].url) == (1104, 1472)


def test_cancel_only_while_pending(live, sdk):
    freeze(live)
    pending_id = submit()
    canceled = ImageSynthesis.cancel(pending_id, api_key=KEY_A)
    assert canceled.status_code == 200
    fetched = ImageSynthesis.fetch(pending_id, api_key=KEY_A)
    assert fetched.output.task_status == "CANCELED"
    # A canceled task stays canceled: time passing does not revive it.
    live.service.clock.advance(30)
    assert ImageSynthesis.fetch(pending_id, api_key=KEY_A).output.task_status == "CANCELED"

    running_id = submit()
    live.service.clock.advance(2)
    assert ImageSynthesis.fetch(running_id, api_key=KEY_A).output.task_status == "RUNNING"
    refused = ImageSynthesis.cancel(running_id, api_key=KEY_A)
    assert refused.status_code == 400
    assert refused.code == "UnsupportedOperation"
    assert refused.message == "Failed to cancel the task, please confirm if the task is in PENDING status."
    # The refused cancel changed nothing: the task still runs to completion.
    live.service.clock.advance(20)
    assert ImageSynthesis.fetch(running_id, api_key=KEY_A).output.task_status == "SUCCEEDED"


def test_list_shows_only_the_accounts_tasks_with_filters(live, sdk):
    freeze(live)
    canceled_id = submit("qwen-image-plus")
    assert ImageSynthesis.cancel(canceled_id, api_key=KEY_A).status_code == 200
    live.service.clock.advance(1.5)  # keep well inside the 2 requests/s limit per model
    pending_id = submit("qwen-image")
    other_account_id = submit("qwen-image-plus", api_key=KEY_B)

    everything = ImageSynthesis.list(page_size=10, api_key=KEY_A)
    assert everything.status_code == 200
    assert everything.output["total"] == 2
    listed = {row["task_id"]: row for row in everything.output["data"]}
    assert set(listed) == {canceled_id, pending_id}
    assert other_account_id not in listed
    assert listed[canceled_id]["status"] == "CANCELED"
    assert listed[pending_id]["model_name"] == "qwen-image"

    first_page = ImageSynthesis.list(page_size=1, api_key=KEY_A)
    assert len(first_page.output["data"]) == 1
    assert (first_page.output["total"], first_page.output["total_page"], first_page.output["page_size"]) == (2, 2, 1)

    by_status = ImageSynthesis.list(status="CANCELED", api_key=KEY_A)
    assert [row["task_id"] for row in by_status.output["data"]] == [canceled_id]
    by_model = ImageSynthesis.list(model_name="qwen-image", api_key=KEY_A)
    assert [row["task_id"] for row in by_model.output["data"]] == [pending_id]

    # Account b sees only its own task.
    of_b = ImageSynthesis.list(api_key=KEY_B)
    assert [row["task_id"] for row in of_b.output["data"]] == [other_account_id]

    # Tasks belong to the account: its second key sees them, by list and by fetch.
    second_key = ImageSynthesis.list(api_key=KEY_A2)
    assert {row["task_id"] for row in second_key.output["data"]} == {canceled_id, pending_id}
    fetched = ImageSynthesis.fetch(pending_id, api_key=KEY_A2)
    assert fetched.status_code == 200
    assert (fetched.output.task_id, fetched.output.task_status) == (pending_id, "PENDING")


# --- wan2.5-i2i-preview: image2image, async only -------------------------------------------------


def test_wan25_image2image_keeps_last_image_aspect(live, sdk, virtual_sleep):
    documented_timing(live, "wan2.5-i2i-preview", pending=1, running=50)
    freeze(live)
    model = CATALOG.model("wan2.5-i2i-preview")
    expected = output_size(model.size_rule, None, (1104, 1472))  # the LAST image's announced size
    # The rule's default: about 1280*1280 pixels, the last image's 3:4 aspect.
    assert abs(expected[0] * expected[1] - 1280 * 1280) / (1280 * 1280) < 0.05
    assert expected[0] / expected[1] == pytest.approx(1104 / 1472, rel=0.02)

    done = ImageSynthesis.call(model="wan2.5-i2i-preview", prompt=EDIT_PROMPT,
                               images=[LANDSCAPE_URL, PORTRAIT_URL], n=2, api_key=KEY_A)
    assert done.status_code == 200, (done.code, done.message)
    assert done.output.task_status == "SUCCEEDED"
    assert done.output["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 2, "FAILED": 0}
    assert done.usage.image_count == 2
    assert len(done.output.results) == 2
    assert [png_size(result.url) for result in done.output.results] == [expected, expected]
    # 1 s pending + 50 s running were waited out in virtual time.
    assert sum(virtual_sleep.slept) >= 51

    # The SDK routed it to the image2image endpoint: the task list names the model.
    listed = ImageSynthesis.list(model_name="wan2.5-i2i-preview", api_key=KEY_A)
    assert [row["task_id"] for row in listed.output["data"]] == [done.output.task_id]


# --- multimodal-generation: synchronous -----------------------------------------------------------


def test_edit_plus_two_images_rounded_size(live, sdk):
    response = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(PORTRAIT_URL),
                                           n=2, size="1033*1032", api_key=KEY_A)
    assert response.status_code == 200, (response.code, response.message)
    urls = result_images(response)
    assert len(urls) == 2
    assert response.output.choices[0].finish_reason == "stop"
    # The doc's example: each side rounded to a multiple of 16, 1033*1032 gives 1040*1024.
    assert (response.usage["width"], response.usage["height"], response.usage["image_count"]) == (1040, 1024, 2)
    assert [png_size(url) for url in urls] == [(1040, 1024), (1040, 1024)]
    assert urls[0] != urls[1]


def test_edit_plus_data_uri_keeps_its_aspect(live, sdk):
    rule = CATALOG.model("qwen-image-edit-plus").size_rule
    expected = output_size(rule, None, (600, 400))
    assert expected[0] / expected[1] == pytest.approx(1.5, rel=0.02)
    assert abs(expected[0] * expected[1] - 1024 * 1024) / (1024 * 1024) < 0.05

    response = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(png_data_uri(600, 400)),
                                           api_key=KEY_A)
    assert response.status_code == 200, (response.code, response.message)
    urls = result_images(response)
    assert len(urls) == 1
    assert (response.usage["width"], response.usage["height"]) == expected
    assert png_size(urls[0]) == expected


def test_image_max_text_only_default_size(live, sdk):
    default = parse_size(CATALOG.model("qwen-image-max").size_rule.default)
    assert default == (1664, 928)  # what the page says the default is
    response = MultiModalConversation.call(model="qwen-image-max",
                                           messages=[{"role": "user", "content": [{"text": PROMPT}]}], api_key=KEY_A)
    assert response.status_code == 200, (response.code, response.message)
    urls = result_images(response)
    assert len(urls) == 1
    assert (response.usage["width"], response.usage["height"], response.usage["image_count"]) == (*default, 1)
    assert png_size(urls[0]) == default


# --- errors as the SDK reports them --------------------------------------------------------------


def test_key_of_another_region_is_invalid(live, sdk):
    response = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=KEY_A_SG)
    assert (response.status_code, response.code, response.message) == (401, "InvalidApiKey", "Invalid API-key provided.")
    response = MultiModalConversation.call(model="qwen-image-max",
                                           messages=[{"role": "user", "content": [{"text": PROMPT}]}], api_key=KEY_A_SG)
    assert (response.status_code, response.code, response.message) == (401, "InvalidApiKey", "Invalid API-key provided.")


def test_invalid_parameter_names_the_field(live, sdk):
    response = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(PORTRAIT_URL),
                                           n=7, api_key=KEY_A)
    assert response.status_code == 400
    assert response.code == "InvalidParameter"
    assert "parameters.n" in response.message


def test_unknown_model(live, sdk):
    response = MultiModalConversation.call(model="qwen-image-nonexistent",
                                           messages=[{"role": "user", "content": [{"text": PROMPT}]}], api_key=KEY_A)
    assert (response.status_code, response.code, response.message) == (400, "InvalidParameter", "Model not exist.")


def test_sync_only_model_on_the_async_endpoint(live, sdk):
    # qwen-image-max is served only by multimodal-generation; the SDK sends it to text2image as a
    # task, which the service refuses per model (observation async-header-on-sync).
    response = ImageSynthesis.async_call(model="qwen-image-max", prompt=PROMPT, api_key=KEY_A)
    assert (response.status_code, response.code, response.message) == (
        403, "AccessDenied", "current user api does not support asynchronous calls.")


def test_fetch_unknown_task_id(live, sdk):
    response = ImageSynthesis.fetch("00000000-0000-0000-0000-000000000000", api_key=KEY_A)
    assert response.status_code == 200
    assert response.output.task_id == "00000000-0000-0000-0000-000000000000"
    assert response.output.task_status == "UNKNOWN"


def test_fetch_task_of_another_account(live, sdk):
    freeze(live)
    task_id = submit(api_key=KEY_B)
    response = ImageSynthesis.fetch(task_id, api_key=KEY_A)
    assert response.status_code == 200
    assert response.output.task_status == "UNKNOWN"
    # Neither can account a cancel it, while its owner still sees it PENDING.
    assert ImageSynthesis.cancel(task_id, api_key=KEY_A).status_code == 400
    assert ImageSynthesis.fetch(task_id, api_key=KEY_B).output.task_status == "PENDING"


def test_finished_task_expires_after_24_hours(live, sdk):
    freeze(live)
    task_id = submit()
    live.service.clock.advance(20)
    assert ImageSynthesis.fetch(task_id, api_key=KEY_A).output.task_status == "SUCCEEDED"
    live.service.clock.advance(DAY - 20 - 1)  # one second before the task's 24 h are up
    assert ImageSynthesis.fetch(task_id, api_key=KEY_A).output.task_status == "SUCCEEDED"
    live.service.clock.advance(2)  # 24 h + 1 s after creation
    expired = ImageSynthesis.fetch(task_id, api_key=KEY_A)
    assert expired.status_code == 200
    assert (expired.output.task_id, expired.output.task_status) == (task_id, "UNKNOWN")


def test_no_key_fails_in_the_sdk_before_any_request(live, sdk, monkeypatch, tmp_path):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.delenv("DASHSCOPE_API_KEY_FILE_PATH", raising=False)
    # The SDK read the environment at import, and falls back to ~/.dashscope/api_key: neutralise all three.
    monkeypatch.setattr(dashscope, "api_key", None)
    monkeypatch.setattr(dashscope, "api_key_file_path", None)
    monkeypatch.setattr(sdk_api_key, "DEFAULT_DASHSCOPE_API_KEY_FILE_PATH", str(tmp_path / "absent"))
    with pytest.raises(AuthenticationError, match="No api key provided"):
        ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=None)
    with pytest.raises(AuthenticationError):
        MultiModalConversation.call(model="qwen-image-max",
                                    messages=[{"role": "user", "content": [{"text": PROMPT}]}], api_key=None)
    # Nothing reached the fake: account a has no task.
    assert ImageSynthesis.list(api_key=KEY_A).output["total"] == 0


def test_no_authorization_header_on_the_wire(live):
    body = {"model": "qwen-image-plus", "input": {"prompt": PROMPT}, "parameters": {}}
    response = httpx.post(live.base_url("cn-beijing") + PATHS["text2image"], json=body,
                          headers={"X-DashScope-Async": "enable"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "InvalidApiKey"
    assert response.json()["message"] == "No API-key provided."
    assert response.json()["request_id"]


# --- the other regions ---------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["ap-southeast-1", "us-east-1"])
def test_other_regions_work_the_same(live, sdk, virtual_sleep, region):
    sdk(region)
    key = demo_key("a", region=region)

    edited = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(PORTRAIT_URL),
                                         size="1033*1032", api_key=key)
    assert edited.status_code == 200, (edited.code, edited.message)
    assert (edited.usage["width"], edited.usage["height"], edited.usage["image_count"]) == (1040, 1024, 1)
    assert png_size(result_images(edited)[0]) == (1040, 1024)

    freeze(live)
    done = ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT, size="1328*1328", api_key=key)
    assert done.status_code == 200, (done.code, done.message)
    assert done.output.task_status == "SUCCEEDED"
    assert png_size(done.output.results[0].url) == (1328, 1328)

    # Keys are per region: the Beijing key is refused here, and this region's task is not Beijing's.
    refused = ImageSynthesis.fetch(done.output.task_id, api_key=KEY_A)
    assert (refused.status_code, refused.code) == (401, "InvalidApiKey")
    sdk("cn-beijing")
    assert ImageSynthesis.fetch(done.output.task_id, api_key=KEY_A).output.task_status == "UNKNOWN"


# The SDK's asyncio clients (aiohttp) leave a client session for the garbage collector; that
# ResourceWarning is the SDK's, not the fake's.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_asyncio_clients_in_another_region(live, sdk):
    """AioImageSynthesis / AioMultiModalConversation against Singapore: they ask for
    /tasks/{id}/ with a trailing slash, which must stay in the region it was sent to."""
    import asyncio

    from dashscope.aigc.image_synthesis import AioImageSynthesis
    from dashscope.aigc.multimodal_conversation import AioMultiModalConversation

    sdk("ap-southeast-1")
    key = KEY_A_SG
    freeze(live)

    async def flow():
        edited = await AioMultiModalConversation.call(api_key=key, model="qwen-image-edit-plus", n=2, size="1033*1032",
                                                      messages=[{"role": "user",
                                                                 "content": [{"image": PORTRAIT_URL}, {"text": EDIT_PROMPT}]}])
        created = await AioImageSynthesis.async_call(api_key=key, model="qwen-image-plus", prompt=PROMPT, size="1328*1328")
        cancelled_task = await AioImageSynthesis.async_call(api_key=key, model="qwen-image-plus", prompt=PROMPT)
        cancelled = await AioImageSynthesis.cancel(cancelled_task, api_key=key)
        live.service.clock.advance(60)
        fetched = await AioImageSynthesis.fetch(created, api_key=key)
        listed = await AioImageSynthesis.list(api_key=key, page_size=10)
        return edited, created, cancelled, fetched, listed

    edited, created, cancelled, fetched, listed = asyncio.run(flow())
    assert (edited.status_code, edited.usage["width"], edited.usage["height"], edited.usage["image_count"]) == (200, 1040, 1024, 2)
    assert (created.status_code, created.output.task_status) == (200, "PENDING")
    assert cancelled.status_code == 200
    assert (fetched.status_code, fetched.output.task_status, fetched.usage.image_count) == (200, "SUCCEEDED", 1)
    assert png_size(fetched.output.results[0].url) == (1328, 1328)
    assert listed.status_code == 200 and listed.output["total"] == 2
