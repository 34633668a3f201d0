"""The task API over HTTP, on the virtual clock: transitions, timing, cancel, expiry, the list, ownership."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import dashscope_schemas as ds
import pytest
from helpers import API, PATHS, TIME, assert_error, auth, create, demo_key, edit_body, png_size, poll, t2i_body, wan_body


def test_task_moves_pending_running_succeeded_on_the_virtual_clock(client, service):
    task_id = create(client, t2i_body(size="1472*1104", n=1))
    first = poll(client, task_id)["output"]
    assert first["task_status"] == "PENDING" and TIME.match(first["submit_time"]) and "results" not in first
    service.clock.advance(1)
    running = poll(client, task_id)["output"]
    assert running["task_status"] == "RUNNING" and TIME.match(running["scheduled_time"])
    service.clock.advance(15)
    done = poll(client, task_id)
    out = done["output"]
    assert out["task_status"] == "SUCCEEDED" and TIME.match(out["end_time"])
    assert out["submit_time"] <= out["scheduled_time"] <= out["end_time"]
    assert out["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0} and done["usage"] == {"image_count": 1}
    assert ds.validate(done, "task-query.succeeded") == []
    assert png_size(client, out["results"][0]["url"]) == (1472, 1104)
    assert poll(client, task_id)["output"]["task_status"] == "SUCCEEDED"  # terminal states stick


def test_wan_task_with_n_images_and_metrics_that_agree(client, service):
    task_id = create(client, wan_body(n=3), endpoint="image2image")
    service.clock.advance(3600)
    body = poll(client, task_id)
    results = body["output"]["results"]
    assert len(results) == 3 and body["usage"]["image_count"] == 3 == body["output"]["task_metrics"]["SUCCEEDED"]
    expected = ds.output_size(ds.load_catalog().model("wan2.5-i2i-preview").size_rule, None, (1104, 1472))
    assert {png_size(client, r["url"]) for r in results} == {expected}


def test_long_prompt_is_truncated_and_orig_actual_show_it(client, service):
    prompt = "word " * 200 + "END"  # 1003 characters, the limit is 800
    task_id = create(client, t2i_body(prompt=prompt, prompt_extend=False))
    # The task keeps what the service keeps: the truncated text, not the whole body's worth.
    assert len(service.store.get(task_id).orig_prompt) == 800
    service.clock.advance(100)
    result = poll(client, task_id)["output"]["results"][0]
    assert result["orig_prompt"] == prompt[:800] and result["actual_prompt"] == prompt[:800]
    task_id = create(client, t2i_body(prompt="a cat"))  # prompt_extend defaults to true: a rewrite
    service.clock.advance(100)
    result = poll(client, task_id)["output"]["results"][0]
    assert result["orig_prompt"] == "a cat" and result["actual_prompt"].startswith("a cat") and result["actual_prompt"] != "a cat"


def test_fast_setting_finishes_on_the_first_poll():
    from helpers import AppClient, make_service

    from mock_server.app import create_app

    service = make_service()
    service.config = service.config.with_fast_tasks()
    client = AppClient(create_app(service=service))
    try:
        assert poll(client, create(client, t2i_body()))["output"]["task_status"] == "SUCCEEDED"
    finally:
        client.close()


def test_poll_timing_per_model_from_a_config_file(tmp_path):
    from helpers import AppClient

    from mock_server.app import create_app
    from mock_server.config import Config
    from mock_server.service import FakeDashScope

    config = tmp_path / "fake.toml"
    config.write_text('[timing.models."qwen-image-plus"]\nmode = "polls"\npending = 1\nrunning = 1\n')
    client = AppClient(create_app(service=FakeDashScope(Config.load(config))))
    try:
        task_id = create(client, t2i_body())
        assert [poll(client, task_id)["output"]["task_status"] for _ in range(3)] == ["PENDING", "RUNNING", "SUCCEEDED"]
    finally:
        client.close()


def test_cancel_only_while_pending(client, service):
    task_id = create(client, t2i_body())
    response = client.post(f"{API}/tasks/{task_id}/cancel", headers=auth())
    assert response.status_code == 200 and ds.validate(response.json(), "task-cancel.response") == []
    assert poll(client, task_id)["output"]["task_status"] == "CANCELED"
    service.clock.advance(1000)
    assert poll(client, task_id)["output"]["task_status"] == "CANCELED"
    running = create(client, t2i_body())
    service.clock.advance(2)
    # The real text, not the error-code page's generic one (observation cancel-not-pending).
    assert_error(client.post(f"{API}/tasks/{running}/cancel", headers=auth()), 400, "UnsupportedOperation",
                 "Failed to cancel the task, please confirm if the task is in PENDING status.")
    assert poll(client, running)["output"]["task_status"] == "RUNNING"
    assert_error(client.post(f"{API}/tasks/no-such-task/cancel", headers=auth()), 400, "UnsupportedOperation")


def test_after_24_hours_the_task_is_unknown_and_its_urls_are_dead(client, service):
    task_id = create(client, t2i_body())
    service.clock.advance(60)
    url = poll(client, task_id)["output"]["results"][0]["url"]
    assert png_size(client, url) == (1664, 928)
    service.clock.advance(24 * 3600 - 60)  # exactly 24 h after submission
    gone = poll(client, task_id)
    assert gone["output"] == {"task_id": task_id, "task_status": "UNKNOWN"} and "usage" not in gone
    assert ds.validate(gone, "task-query.unknown") == []
    service.clock.advance(120)  # the URL lives 24 h after the task ended
    parts = urlsplit(url)
    expired = client.get(f"{parts.path}?{parts.query}")
    assert expired.status_code == 403 and b"<Code>AccessDenied</Code>" in expired.content
    assert b"Request has expired." in expired.content


def test_tampered_result_url_is_refused(client, service):
    body = client.post(API + PATHS["multimodal-generation"], json=edit_body(), headers=auth()).json()
    parts = urlsplit(body["output"]["choices"][0]["message"]["content"][0]["image"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    longer = {**query, "Expires": str(int(query["Expires"]) + 3600)}
    for path, q in ((parts.path, longer), (parts.path.replace(".png", "0.png"), query), (parts.path, {**query, "Signature": "x"})):
        response = client.get(f"{path}?{urlencode(q)}")
        assert response.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in response.content
    assert client.get(parts.path).status_code == 403
    assert client.get(f"/__oss/other-bucket/results/x.png?{parts.query}").status_code == 404


def test_unknown_task_id_is_unknown(client):
    assert poll(client, "7277e20e-aa01-4709-0000-000000000000")["output"]["task_status"] == "UNKNOWN"


def test_list_filters_and_pages(client, service):
    ids = [create(client, t2i_body()) for _ in range(3)]
    wan = create(client, wan_body(), endpoint="image2image", key=demo_key(n=2))
    create(client, t2i_body(), key=demo_key("b"))
    service.clock.advance(5)
    client.post(f"{API}/tasks/{ids[0]}/cancel", headers=auth())  # too late: RUNNING stays
    listing = client.get(f"{API}/tasks", params={"page_no": 1, "page_size": 2}, headers=auth()).json()
    assert ds.validate(listing, "task-list.response") == []
    assert (listing["total"], listing["total_page"], len(listing["data"])) == (4, 2, 2)
    assert listing["data"][0]["task_id"] == wan  # newest first
    page2 = client.get(f"{API}/tasks", params={"page_no": 2, "page_size": 2}, headers=auth()).json()
    assert {d["task_id"] for d in listing["data"] + page2["data"]} == set(ids) | {wan}

    def total(**params):
        return client.get(f"{API}/tasks", params=params, headers=auth()).json()["total"]

    assert total(model_name="wan2.5-i2i-preview") == 1
    assert total(api_key_id="key-a-bj-2") == 1
    assert total(status="RUNNING") == 4 and total(status="SUCCEEDED") == 0
    assert total(region="ap-southeast-1") == 0
    assert total(start_time="20000101000000") == 4 and total(end_time="20000101000000") == 0
    assert total(start_time="20000230000000") == 4  # a day past the month's end rolls over, as documented


@pytest.mark.parametrize("params", [{"page_no": "0"}, {"page_size": "1000"}, {"page_size": "ten"}, {"status": "DONE"},
                                    {"start_time": "2023-04-20"}, {"end_time": "20231399000000"}, {"start_time": "00000000000000"},
                                    {"status": ""}, {"start_time": ""}])
def test_list_rejects_bad_parameters(client, params):
    assert_error(client.get(f"{API}/tasks", params=params, headers=auth()), 400, "InvalidParameter")


def test_a_task_is_visible_to_its_account_in_its_region_only(client, service):
    task_id = create(client, t2i_body())
    assert poll(client, task_id, key=demo_key("a", n=2))["output"]["task_status"] == "PENDING"
    assert poll(client, task_id, key=demo_key("b"))["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    same_account_other_region = demo_key("a", region="ap-southeast-1")
    assert poll(client, task_id, key=same_account_other_region, region="ap-southeast-1")["output"]["task_status"] == "UNKNOWN"
    assert_error(client.post(f"{API}/tasks/{task_id}/cancel", headers=auth(demo_key("b"))), 400, "UnsupportedOperation")
    assert client.get(f"{API}/tasks", headers=auth(demo_key("b"))).json()["total"] == 0
    assert poll(client, task_id)["output"]["task_status"] == "PENDING"  # b's attempt changed nothing
