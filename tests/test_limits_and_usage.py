"""Rate limits on the virtual clock, concurrency, the task API limit; usage, cost and free tier."""

from __future__ import annotations

import dashscope_schemas as ds
import pytest
from helpers import ASYNC, PATHS, AppClient, auth, demo_key, make_service

from mock_server.app import create_app
from mock_server.domain.billing import Ledger
from mock_server.domain.limits import Bucket, RateLimiter, take

API = "/cn-beijing/api/v1"
CATALOG = ds.load_catalog()


@pytest.fixture
def limited():
    service = make_service(rate_limits={"enabled": True, "scale": 1.0, "task_api_per_second": 20})
    client = AppClient(create_app(service=service))
    yield client, service
    client.close()


def max_image(client, key=None, region="cn-beijing"):
    return client.post(f"/{region}/api/v1" + PATHS["multimodal-generation"], headers=auth(key or demo_key(region=region)),
                       json={"model": "qwen-image-max", "input": {"messages": [{"role": "user", "content": [{"text": "a"}]}]}})


def t2i(client, key=None):
    return client.post(API + PATHS["text2image"], headers=auth(key, **ASYNC),
                       json={"model": "qwen-image-plus", "input": {"prompt": "a cat"}})


def test_token_bucket_refills_with_time():
    bucket = Bucket(2, 2 / 60, 2, 0.0)
    ok1, bucket = take(bucket, 0)
    ok2, bucket = take(bucket, 0)
    ok3, bucket = take(bucket, 0)
    assert (ok1, ok2, ok3) == (True, True, False)
    assert take(bucket, 29.9)[0] is False and take(bucket, 30.0)[0] is True
    limiter = RateLimiter(scale=2)
    assert sum(limiter.allow("k", 1, "second", 0) for _ in range(5)) == 2
    with pytest.raises(ValueError):
        RateLimiter(scale=0)


def test_requests_per_minute_then_quota_returns_with_the_clock(limited):
    client, service = limited
    assert [max_image(client).status_code for _ in range(3)] == [200, 200, 429]
    body = max_image(client).json()
    assert body["code"] == "Throttling.RateQuota" and body["message"] == CATALOG.error("rate_quota")["message"]
    assert max_image(client, demo_key("b")).status_code == 200  # per account
    assert max_image(client, region="ap-southeast-1").status_code == 200  # and per region
    service.clock.advance(30)
    assert max_image(client).status_code == 200
    assert max_image(client).status_code == 429
    service.clock.advance(60)
    assert [max_image(client).status_code for _ in range(3)] == [200, 200, 429]


def test_concurrent_tasks_are_limited_until_they_finish(limited):
    client, service = limited
    assert [t2i(client).status_code for _ in range(2)] == [200, 200]
    service.clock.advance(1)  # refill the 2 per second, the two tasks are still running
    third = t2i(client)
    assert third.status_code == 429 and third.json()["code"] == "Throttling.RateQuota"
    service.clock.advance(30)  # both finished
    assert t2i(client).status_code == 200


def test_task_api_has_its_own_limit_per_account(limited):
    client, service = limited
    statuses = [client.get(f"{API}/tasks/x", headers=auth()).status_code for _ in range(21)]
    assert statuses.count(200) == 20 and statuses[-1] == 429
    assert client.get(f"{API}/tasks/x", headers=auth(demo_key("b"))).status_code == 200
    service.clock.advance(1)
    assert client.get(f"{API}/tasks/x", headers=auth()).status_code == 200


def test_scale_and_switch():
    service = make_service(rate_limits={"enabled": True, "scale": 2.0})
    client = AppClient(create_app(service=service))
    try:
        assert [max_image(client).status_code for _ in range(5)] == [200] * 4 + [429]
    finally:
        client.close()
    off = AppClient(create_app(service=make_service()))
    try:
        assert {max_image(off).status_code for _ in range(10)} == {200}
    finally:
        off.close()


def test_ledger_spends_free_images_first_and_refunds():
    ledger = Ledger()
    ledger.charge("a", "ap-southeast-1", "m", 3, 0.03, quota=4)
    ledger.charge("a", "ap-southeast-1", "m", 3, 0.03, quota=4)
    [line] = ledger.report({("a", "ap-southeast-1", "m"): 4})
    assert (line["images"], line["free_images"], line["free_quota_left"], line["cost_usd"]) == (6, 4, 0, 0.06)
    ledger.refund("a", "ap-southeast-1", "m", 3, 0.03)
    [line] = ledger.report({("a", "ap-southeast-1", "m"): 4})
    assert (line["images"], line["free_images"], line["cost_usd"]) == (3, 3, 0.0)
    ledger.free_tier_only.add("a")
    assert not ledger.refuses("a", "ap-southeast-1", "m", 4) and ledger.refuses("a", "cn-beijing", "m", 0)


def test_usage_counts_successes_at_catalog_prices_and_failed_calls_are_free(client, service):
    sg = demo_key(region="ap-southeast-1")
    model = CATALOG.model("qwen-image-edit-plus")
    body = {"model": "qwen-image-edit-plus", "parameters": {"n": 6},
            "input": {"messages": [{"role": "user", "content": [{"image": "https://e.com/a.png"}, {"text": "x"}]}]}}
    for _ in range(20):  # 120 images: 100 free, 20 paid
        assert client.post("/ap-southeast-1/api/v1" + PATHS["multimodal-generation"], json=body, headers=auth(sg)).status_code == 200
    client.post("/__admin/scenarios", json={"effect": {"type": "task_failed"}, "match": {"endpoint": "multimodal-generation"}})
    assert client.post("/ap-southeast-1/api/v1" + PATHS["multimodal-generation"], json=body, headers=auth(sg)).status_code == 500
    [line] = client.get("/__admin/usage").json()["usage"]
    free = model.free_quota_images["ap-southeast-1"]
    assert (line["model"], line["region"], line["images"], line["free_images"]) == ("qwen-image-edit-plus", "ap-southeast-1", 120, free)
    assert line["cost_usd"] == pytest.approx((120 - free) * model.price_per_image["ap-southeast-1"])


def test_cancelled_tasks_are_refunded_and_failed_tasks_cost_nothing(client, service):
    task_id = t2i(client).json()["output"]["task_id"]
    client.post(f"{API}/tasks/{task_id}/cancel", headers=auth())
    client.post("/__admin/scenarios", json={"effect": {"type": "task_failed"}, "match": {"endpoint": "text2image"}, "times": 1})
    t2i(client)
    assert client.get("/__admin/usage").json()["usage"] == []
    t2i(client)
    [line] = client.get("/__admin/usage").json()["usage"]
    assert line["images"] == 1 and line["cost_usd"] is None  # no documented price for qwen-image-plus


def test_free_tier_only_refuses_once_the_free_quota_is_spent(client):
    assert client.post("/__admin/usage/free-tier-only", json={"account": "demo-account-a", "enabled": True}).json() == {
        "free_tier_only": ["demo-account-a"]}
    content = [{"image": "https://e.com/a.png"}, {"text": "x"}]
    body = {"model": "qwen-image-edit", "input": {"messages": [{"role": "user", "content": content}]}}
    refused = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth())  # Beijing: no free quota
    assert (refused.status_code, refused.json()["code"]) == (403, "AllocationQuota.FreeTierOnly")
    assert client.post(API + PATHS["multimodal-generation"], json=body, headers=auth(demo_key("b"))).status_code == 200
    sg = "/ap-southeast-1/api/v1" + PATHS["multimodal-generation"]
    assert client.post(sg, json=body, headers=auth(demo_key(region="ap-southeast-1"))).status_code == 200  # 100 free there
    client.post("/__admin/usage/free-tier-only", json={"account": "demo-account-a", "enabled": False})
    assert client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).status_code == 200
    bad = client.post("/__admin/usage/free-tier-only", json={"account": "nobody", "enabled": True})
    assert bad.status_code == 400 and ds.validate(bad.json(), "error") == []
