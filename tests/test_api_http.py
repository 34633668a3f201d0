"""The faked API over HTTP (httpx against the ASGI app), with the virtual clock advanced instead of waiting."""

from __future__ import annotations

import base64
import io
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import dashscope_schemas as ds
import pytest
from conftest import ASYNC, PATHS, auth, demo_key
from PIL import Image

API = "/cn-beijing/api/v1"
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def edit_body(model="qwen-image-edit-plus", text="make it blue", images=("https://e.com/a.png",), **params):
    content = [{"image": i} for i in images] + [{"text": text}]
    return {"model": model, "input": {"messages": [{"role": "user", "content": content}]}, "parameters": params}


def t2i_body(model="qwen-image-plus", prompt="a cat", **params):
    return {"model": model, "input": {"prompt": prompt}, "parameters": params}


def wan_body(prompt="put the clock by the vase", images=("https://e.com/a-tps-1104-1472.webp",), **params):
    return {"model": "wan2.5-i2i-preview", "input": {"prompt": prompt, "images": list(images)}, "parameters": params}


def assert_error(response, status, code, message=None, name="error"):
    assert response.status_code == status, response.text
    body = response.json()
    assert ds.validate(body, name) == []
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message
    return body


def png_size(client, url) -> tuple[int, int]:
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG"
        return image.size


def create(client, body, endpoint="text2image", key=None, region="cn-beijing"):
    response = client.post(f"/{region}/api/v1{PATHS[endpoint]}", json=body, headers=auth(key or demo_key(region=region), **ASYNC))
    assert response.status_code == 200, response.text
    assert ds.validate(response.json(), "task-created.response") == []
    return response.json()["output"]["task_id"]


def poll(client, task_id, key=None, region="cn-beijing"):
    response = client.get(f"/{region}/api/v1/tasks/{task_id}", headers=auth(key or demo_key(region=region)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert ds.validate(body, "task-query.response") == [], body
    return body


# --- synchronous generation ------------------------------------------------------------------


def test_multimodal_edit_returns_n_images_of_the_rounded_size(client):
    response = client.post(API + PATHS["multimodal-generation"], json=edit_body(n=2, size="1033*1032"), headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert ds.validate(body, "multimodal-generation.response") == []
    content = body["output"]["choices"][0]["message"]["content"]
    assert body["usage"] == {"width": 1040, "height": 1024, "image_count": 2} and len(content) == 2
    assert [png_size(client, c["image"]) for c in content] == [(1040, 1024)] * 2


def test_same_seed_same_bytes_and_different_index_different_bytes(client):
    def images(seed):
        body = client.post(API + PATHS["multimodal-generation"], json=edit_body(n=2, seed=seed), headers=auth()).json()
        urls = [c["image"] for c in body["output"]["choices"][0]["message"]["content"]]
        return [client.get(urlsplit(u).path + "?" + urlsplit(u).query).content for u in urls]

    first, again, other = images(123), images(123), images(124)
    assert first == again and first[0] != first[1] and first[0] != other[0]


def test_no_size_follows_the_last_input_images_aspect(client):
    def png_uri(w, h):
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (10, 20, 30)).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    rule = ds.load_catalog().model("qwen-image-edit-plus").size_rule
    body = edit_body(images=(png_uri(900, 900), png_uri(600, 400)))
    usage = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).json()["usage"]
    assert (usage["width"], usage["height"]) == ds.output_size(rule, None, (600, 400))
    assert abs(usage["width"] / usage["height"] - 1.5) < 0.02
    from_url = client.post(API + PATHS["multimodal-generation"], headers=auth(),
                           json=edit_body(images=("https://img.example.com/x-tps-1104-1472.webp",))).json()["usage"]
    assert (from_url["width"], from_url["height"]) == ds.output_size(rule, None, (1104, 1472))


def test_text_to_image_models_use_their_default_size(client):
    for model in ("qwen-image-max", "qwen-image-2.0-pro"):
        body = {"model": model, "input": {"messages": [{"role": "user", "content": [{"text": "a poster"}]}]}}
        usage = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).json()["usage"]
        assert ds.format_size((usage["width"], usage["height"])) == ds.load_catalog().model(model).size_rule.default


def test_an_unreadable_data_uri_image_is_a_400(client):
    bad = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n garbage").decode()
    response = client.post(API + PATHS["multimodal-generation"], json=edit_body(images=(bad,)), headers=auth())
    assert_error(response, 400, "InvalidParameter")


# --- async tasks: lifecycle ------------------------------------------------------------------


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
    from conftest import AppClient, make_service

    from mock_server.app import create_app

    service = make_service()
    service.config = service.config.with_fast_tasks()
    client = AppClient(create_app(service=service))
    try:
        assert poll(client, create(client, t2i_body()))["output"]["task_status"] == "SUCCEEDED"
    finally:
        client.close()


def test_poll_timing_per_model_from_a_config_file(tmp_path):
    from conftest import AppClient

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
    assert_error(client.post(f"{API}/tasks/{running}/cancel", headers=auth()), 400, "UnsupportedOperation",
                 "The operation is unsupported on the referee object.")
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


# --- task list ---------------------------------------------------------------------------------


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


# --- keys, regions and accounts ----------------------------------------------------------------


def test_keys_and_regions(client):
    sg = demo_key(region="ap-southeast-1")
    assert_error(client.get(f"{API}/tasks/x", headers=auth(sg)), 401, "InvalidApiKey", "Invalid API-key provided.")
    assert_error(client.get(f"{API}/tasks/x"), 401, "InvalidApiKey", "No API-key provided.")
    assert_error(client.get(f"{API}/tasks/x", headers={"Authorization": "Basic abc"}), 401, "InvalidApiKey", "No API-key provided.")
    assert_error(client.get(f"{API}/tasks/x", headers=auth("sk-not-a-key")), 401, "InvalidApiKey", "Invalid API-key provided.")
    assert client.get("/ap-southeast-1/api/v1/tasks/x", headers=auth(sg)).status_code == 200
    # the real domains' Host header picks the region too, and plain /api/v1 is the default region
    assert client.get("/api/v1/tasks/x", headers=auth(sg, Host="dashscope-intl.aliyuncs.com")).status_code == 200
    assert client.get("/api/v1/tasks/x", headers=auth(demo_key(region="us-east-1"), Host="dashscope-us.aliyuncs.com")).status_code == 200
    assert client.get("/api/v1/tasks/x", headers=auth()).status_code == 200
    assert client.get("/api/v1/tasks/x", headers=auth(sg)).status_code == 401


def test_a_task_is_visible_to_its_account_in_its_region_only(client, service):
    task_id = create(client, t2i_body())
    assert poll(client, task_id, key=demo_key("a", n=2))["output"]["task_status"] == "PENDING"
    assert poll(client, task_id, key=demo_key("b"))["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    same_account_other_region = demo_key("a", region="ap-southeast-1")
    assert poll(client, task_id, key=same_account_other_region, region="ap-southeast-1")["output"]["task_status"] == "UNKNOWN"
    assert_error(client.post(f"{API}/tasks/{task_id}/cancel", headers=auth(demo_key("b"))), 400, "UnsupportedOperation")
    assert client.get(f"{API}/tasks", headers=auth(demo_key("b"))).json()["total"] == 0
    assert poll(client, task_id)["output"]["task_status"] == "PENDING"  # b's attempt changed nothing


# --- validation and malformed input --------------------------------------------------------------


def test_validation_errors_are_400_invalid_parameter_naming_field_and_rule(client):
    body = assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(model="qwen-image-edit", n=2),
                                    headers=auth()), 400, "InvalidParameter")
    assert "parameters.n" in body["message"] and "n-range" in body["message"]
    assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(model="qwen-image-ultra"), headers=auth()),
                 400, "InvalidParameter", "Model not exist.")
    assert_error(client.post(API + PATHS["text2image"], json=t2i_body(model="qwen-image-max"), headers=auth(**ASYNC)),
                 400, "InvalidParameter", "url error, please check url!")
    assert_error(client.post(API + PATHS["multimodal-generation"], json=wan_body(), headers=auth()),
                 400, "InvalidParameter", "url error, please check url!")
    assert_error(client.post(API + PATHS["image2image"], json=wan_body(), headers=auth()),
                 403, "AccessDenied", "current user api does not support synchronous calls.")


def test_unknown_parameters_are_ignored(client):
    body = edit_body(n=1, result_format="message", stream=False, temperature=0.3)
    body["extra_top_level"] = {"x": 1}
    assert client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).status_code == 200


def test_profile_2025_12_rejects_size_with_n_above_1():
    from conftest import AppClient, make_service

    from mock_server.app import create_app

    client = AppClient(create_app(service=make_service(profile="2025-12")))
    try:
        body = assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(n=2, size="1024*1024"),
                                        headers=auth()), 400, "InvalidParameter")
        assert "size-only-with-n-1" in body["message"]
        assert client.post(API + PATHS["multimodal-generation"], json=edit_body(n=1, size="1024*1024"), headers=auth()).status_code == 200
        assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(model="qwen-image-edit-max"), headers=auth()),
                     400, "InvalidParameter", "Model not exist.")
    finally:
        client.close()


@pytest.mark.parametrize("content, headers", [
    (b"{", {"Content-Type": "application/json"}),
    (b"[1, 2]", {"Content-Type": "application/json"}),
    (b'"text"', {"Content-Type": "application/json"}),
    (b"null", {"Content-Type": "application/json"}),
    (b'{"model": NaN}', {"Content-Type": "application/json"}),
    (b"\xff\xfe{}", {"Content-Type": "application/json"}),
    (b"[" * 100000, {"Content-Type": "application/json"}),
    (b"model=qwen-image-plus", {"Content-Type": "application/x-www-form-urlencoded"}),
    (b'{"model": "qwen-image-plus"}', {}),
    (b"", {"Content-Type": "application/json"}),
])
def test_malformed_bodies_get_the_envelope_never_a_500(client, content, headers):
    for endpoint in PATHS:
        response = client.post(API + PATHS[endpoint], content=content, headers=auth(**ASYNC, **headers))
        assert_error(response, 400, "InvalidParameter")


def test_oversized_body_is_refused_before_it_is_read():
    from conftest import AppClient, make_service

    from mock_server.app import create_app

    client = AppClient(create_app(service=make_service(max_body_bytes=1000)))
    try:
        big = edit_body(text="x" * 5000)
        body = assert_error(client.post(API + PATHS["multimodal-generation"], json=big, headers=auth()), 400, "InvalidParameter")
        assert "1000 bytes" in body["message"]
    finally:
        client.close()


def test_unknown_paths_and_methods(client):
    assert_error(client.post(f"{API}/services/aigc/text2video/video-synthesis", json={}, headers=auth()),
                 400, "InvalidParameter", "url error, please check url!")
    wrong_method = client.get(API + PATHS["text2image"], headers=auth())
    assert_error(wrong_method, 405, "MethodNotAllowed")
    assert wrong_method.headers["allow"] == "POST"
    response = client.get("/eu-west-9/api/v1/tasks")
    assert response.status_code == 404 and ds.validate(response.json(), "error") == []


def test_nothing_stored_is_lost_by_bad_requests(client, service):
    task_id = create(client, t2i_body())
    for content in (b"{", b"[]", b'{"model": 1}'):
        client.post(API + PATHS["text2image"], content=content, headers=auth(**ASYNC, **{"Content-Type": "application/json"}))
    assert poll(client, task_id)["output"]["task_status"] == "PENDING"


# --- admin -------------------------------------------------------------------------------------


def test_admin_clock_reset_regions_keys(client, service):
    state = client.get("/__admin/clock").json()
    assert state["frozen"] is False
    advanced = client.post("/__admin/clock/advance", json={"seconds": 86400}).json()
    assert advanced["frozen"] is True and advanced["now"] >= state["now"] + 86400
    assert_error(client.post("/__admin/clock/advance", json={"seconds": -1}), 400, "InvalidParameter")
    assert_error(client.post("/__admin/clock/advance", content=b"{oops"), 400, "InvalidParameter")
    assert_error(client.post("/__admin/clock/advance", json={"seconds": "10"}), 400, "InvalidParameter")
    task_id = create(client, t2i_body())
    assert client.post("/__admin/reset").json()["frozen"] is False
    assert poll(client, task_id)["output"]["task_status"] == "UNKNOWN"
    regions = client.get("/__admin/regions").json()
    assert regions["regions"]["ap-southeast-1"]["base_url"] == "http://testserver/ap-southeast-1/api/v1"
    assert set(regions["regions"]) == {"cn-beijing", "ap-southeast-1", "us-east-1"}
    keys = client.get("/__admin/keys").json()["keys"]
    assert len(keys) == 12 and {k["account"] for k in keys} == {"demo-account-a", "demo-account-b"}
    assert {(k["account"], k["region"]) for k in keys} == {(a, r) for a in ("demo-account-a", "demo-account-b")
                                                          for r in ("cn-beijing", "ap-southeast-1", "us-east-1")}


def _png_announcing(width: int, height: int) -> bytes:
    """A well-formed PNG whose header announces width x height (its pixel data is empty): a
    decompression bomb's calling card when the canvas is huge."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height, status", [(100_000, 100_000, 400), (12_000, 12_000, 200), (3000, 1000, 200)])
def test_hostile_images_are_handled_by_their_header_never_a_crash(client, width, height, status):
    """The fake reads only dimensions: a huge but plausible header is used, an absurd one refused."""
    uri = "data:image/png;base64," + base64.b64encode(_png_announcing(width, height)).decode()
    response = client.post(API + PATHS["multimodal-generation"], json=edit_body(images=(uri,)), headers=auth())
    if status == 400:
        assert_error(response, 400, "InvalidParameter")
    else:
        assert response.status_code == 200, response.text
        rule = ds.load_catalog().model("qwen-image-edit-plus").size_rule
        usage = response.json()["usage"]
        assert (usage["width"], usage["height"]) == ds.output_size(rule, None, (width, height))


def test_error_messages_do_not_quote_large_inputs_back(client):
    big = "data:image/png;base64," + "A" * 2_000_000
    body = edit_body(images=(big, big, big, big))  # one image too many: "[...] is too long"
    error = assert_error(client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()), 400, "InvalidParameter")
    assert len(error["message"]) < 400 and "input.messages[0].content" in error["message"]


def test_trailing_slashes_are_served_in_place_not_redirected(client):
    """The SDK's asyncio client asks for /tasks/{id}/; a redirect would lose the region prefix."""
    sg = demo_key(region="ap-southeast-1")
    task_id = create(client, t2i_body(), key=sg, region="ap-southeast-1")
    response = client.get(f"/ap-southeast-1/api/v1/tasks/{task_id}/", headers=auth(sg))
    assert response.status_code == 200 and response.json()["output"]["task_status"] == "PENDING"
    assert client.get("/ap-southeast-1/api/v1/tasks/", headers=auth(sg)).status_code == 200
