"""The SDK's newer routes, unmodified, against the live fake on loopback: SDK 2.0's ImageGeneration
(async tasks on /services/aigc/image-generation/generation, messages input; its call() is the
synchronous multimodal route) and the new dashscope.Client (images.generate, images.jobs.*).
Polling sleeps run on the fake's virtual clock (the 1.x loop in dashscope.client.base_api, the
2.0 one in dashscope.v2.resources._jobs)."""

from __future__ import annotations

import dashscope
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from helpers import freeze
from sdk_helpers import KEY_A, PROMPT, png_size

MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]
ASYNC_ONLY = "current user api does not support asynchronous calls."


@pytest.fixture
def client(live):
    with dashscope.Client(api_key=KEY_A, base_url=live.base_url("cn-beijing"), max_retries=0) as client:
        yield client


# --- ImageGeneration (SDK 2.0.2, 1.x-style classes) -------------------------------------------------


def test_image_generation_async_call_and_wait(live, sdk, virtual_sleep, wire):
    freeze(live)
    task = ImageGeneration.async_call(model="qwen-image-plus", messages=MESSAGES, api_key=KEY_A, size="1328*1328")
    assert task.status_code == 200 and task.output.task_status == "PENDING"
    sent = wire.calls[0]
    assert sent["path"].endswith("/services/aigc/image-generation/generation")
    assert sent["headers"]["X-DashScope-Async"] == "enable"
    done = ImageGeneration.wait(task, api_key=KEY_A)
    assert done.status_code == 200 and done.output.task_status == "SUCCEEDED"
    assert done.output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    assert png_size(done.output["results"][0]["url"]) == (1328, 1328)
    assert sum(virtual_sleep.slept) >= 16  # the default timing (1 s pending, 15 s running), not wall time
    fetched = ImageGeneration.fetch(task, api_key=KEY_A)
    assert fetched.output.task_status == "SUCCEEDED"


def test_image_generation_async_call_of_a_sync_only_model_is_refused(live, sdk):
    response = ImageGeneration.async_call(model="qwen-image-2.0", messages=MESSAGES, api_key=KEY_A)
    assert (response.status_code, response.code, response.message) == (403, "AccessDenied", ASYNC_ONLY)


def test_image_generation_call_is_one_synchronous_request(live, sdk, wire):
    response = ImageGeneration.call(model="qwen-image-max", messages=MESSAGES, api_key=KEY_A, size="1664*928")
    assert response.status_code == 200
    assert wire.calls[0]["path"].endswith("/services/aigc/multimodal-generation/generation")
    image = response.output.choices[0].message.content[0]["image"]
    assert png_size(image) == (1664, 928)
    assert response.output["task_metric"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}


def test_image_generation_cancel_and_list(live, sdk):
    freeze(live)
    task = ImageGeneration.async_call(model="qwen-image", messages=MESSAGES, api_key=KEY_A)
    cancelled = ImageGeneration.cancel(task, api_key=KEY_A)
    assert cancelled.status_code == 200
    listed = ImageGeneration.list(api_key=KEY_A, page_size=10)
    assert listed.status_code == 200
    [item] = [d for d in listed.output["data"] if d["task_id"] == task.output.task_id]
    assert item["status"] == "CANCELED" and isinstance(item["gmt_create"], int)
    assert item["user_api_unique_key"] == "apikey:v1:aigc:image-generation:generation:qwen-image"


# --- dashscope.Client (SDK 2.0) ----------------------------------------------------------------------


def test_client_images_generate_makes_a_task_and_waits_for_it(live, client, virtual_sleep):
    freeze(live)
    job = client.images.generate(model="qwen-image-plus", prompt=PROMPT, size="1664*928")
    assert job.succeeded and job.task_id
    [url] = job.image_urls
    assert png_size(url) == (1664, 928)
    assert virtual_sleep.slept and sum(virtual_sleep.slept) >= 16


def test_client_jobs_create_wait_fetch_list(live, client, virtual_sleep):
    freeze(live)
    job = client.images.jobs.create(model="qwen-image", prompt=PROMPT, n=1)
    assert job.status == "PENDING" and job.task_id
    done = client.images.jobs.wait(job, timeout=3600)
    assert done.succeeded and len(done.image_urls) == 1 and done.finished_at
    fetched = client.images.jobs.fetch(job.task_id)
    assert fetched.status == "SUCCEEDED" and fetched.image_urls == done.image_urls
    page = client.images.jobs.list(page_no=1, page_size=10)
    # The SDK reads list items from `tasks`; the service (and the fake) send them under `data`
    # (observation sdk2-jobs-list-key): the page has the count but no items, on both.
    assert page.total == 1 and page.tasks == []


def test_client_jobs_cancel_and_refusals_raise_the_sdks_errors(live, client):
    freeze(live)
    job = client.images.jobs.create(model="qwen-image-plus", prompt=PROMPT)
    client.images.jobs.cancel(job.task_id)
    assert client.images.jobs.fetch(job.task_id).status == "CANCELED"
    with pytest.raises(dashscope.v2.errors.PermissionDeniedError) as refused:
        client.images.generate(model="qwen-image-max", prompt=PROMPT)  # the SDK asks a sync-only model for a task
    assert refused.value.message == ASYNC_ONLY and refused.value.status_code == 403
    with pytest.raises(dashscope.v2.errors.BadRequestError) as invalid:
        client.images.jobs.create(model="qwen-image-plus", prompt=PROMPT, size="512*512")
    assert invalid.value.message.startswith("The size does not match the allowed size ")
    assert invalid.value.request_id == invalid.value.headers["x-request-id"]
