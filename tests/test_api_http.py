"""What every route does alike over HTTP: keys and regions, malformed bodies, unknown paths, the
admin API, trailing slashes."""

from __future__ import annotations

import dashscope_schemas as ds
import pytest
from dashscope_schemas import load_catalog
from helpers import API, ASYNC, PATHS, assert_error, auth, create, demo_key, edit_body, poll, t2i_body

CATALOG = load_catalog()


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
        mode = ASYNC if load_catalog().endpoints[endpoint].is_async else {}
        response = client.post(API + PATHS[endpoint], content=content, headers=auth(**mode, **headers))
        no_input = content == b'{"model": "qwen-image-plus"}' and headers  # JSON without input (observation missing-input)
        assert_error(response, 400, "BadRequest.EmptyInput" if no_input else "InvalidParameter")


def test_oversized_body_is_refused_before_it_is_read():
    from helpers import AppClient, make_service

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
                 400, "InvalidParameter", CATALOG.error("url_error")["message"])
    # A wrong method on an API path, in the service's words (observation wrong-method) ...
    for method, path in (("GET", PATHS["text2image"]), ("DELETE", "/tasks/t-1"), ("GET", "/tasks/t-1/cancel")):
        assert_error(client.request(method, API + path, headers=auth()), 400, "InvalidParameter",
                     f"Request method '{method}' is not supported.")
    # ... and a plain 405 on the fake's own hosts, which are not the API.
    wrong_method = client.get("/__oss-upload")
    assert_error(wrong_method, 405, "MethodNotAllowed")
    assert wrong_method.headers["allow"] == "POST"
    response = client.get("/eu-west-9/api/v1/tasks")
    assert response.status_code == 404 and ds.validate(response.json(), "error") == []


def test_nothing_stored_is_lost_by_bad_requests(client, service):
    task_id = create(client, t2i_body())
    for content in (b"{", b"[]", b'{"model": 1}'):
        client.post(API + PATHS["text2image"], content=content, headers=auth(**ASYNC, **{"Content-Type": "application/json"}))
    assert poll(client, task_id)["output"]["task_status"] == "PENDING"


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


def test_trailing_slashes_are_served_in_place_not_redirected(client):
    """The SDK's asyncio client asks for /tasks/{id}/; a redirect would lose the region prefix."""
    sg = demo_key(region="ap-southeast-1")
    task_id = create(client, t2i_body(), key=sg, region="ap-southeast-1")
    response = client.get(f"/ap-southeast-1/api/v1/tasks/{task_id}/", headers=auth(sg))
    assert response.status_code == 200 and response.json()["output"]["task_status"] == "PENDING"
    assert client.get("/ap-southeast-1/api/v1/tasks/", headers=auth(sg)).status_code == 200
