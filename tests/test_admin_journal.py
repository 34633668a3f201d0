"""The control API for an app's test suite: the request journal (GET /__admin/requests), health,
freezing and unfreezing the clock, the front page, and where a wrong prefix is pointed."""

from __future__ import annotations

import base64
import io
import os
from importlib import metadata

import pytest
from helpers import API, ASYNC, PATHS, AppClient, assert_error, auth, demo_key, edit_body, make_service, png_size, t2i_body
from PIL import Image

from mock_server.app import create_app
from mock_server.clock import ControllableClock
from mock_server.config import Config
from mock_server.journal import Masker, secret_name
from mock_server.service import FakeDashScope

ENTRY_KEYS = {"id", "time", "method", "path", "query", "endpoint", "region", "status", "request_id", "headers", "body"}


def journal(client, **query) -> dict:
    response = client.get("/__admin/requests", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def t2i(client, region="cn-beijing", **headers):
    return client.post(f"/{region}/api/v1{PATHS['text2image']}", json=t2i_body(),
                       headers=auth(demo_key(region=region), **ASYNC, **headers))


def png_data_uri(size=(64, 64)) -> str:
    buffer = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buffer, "PNG")  # noise: no compression
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def make_client(**overrides) -> AppClient:
    return AppClient(create_app(service=make_service(**overrides)))


def test_api_requests_oldest_first_with_their_route_region_status_and_answer_id(client, service):
    service.clock.advance(0)  # frozen: the journal's times are exactly the fake's clock
    created = t2i(client)
    task_id = created.json()["output"]["task_id"]
    polled = client.get(f"{API}/tasks/{task_id}", headers=auth())
    singapore = t2i(client, region="ap-southeast-1")
    client.get("/__admin/keys")
    client.get("/openapi.json")
    client.get("/")
    answer = journal(client)
    assert set(answer) == {"requests", "total", "capacity"} and answer["capacity"] == 1000 and answer["total"] == 3
    first, poll, sg = answer["requests"]
    assert all(set(entry) == ENTRY_KEYS for entry in answer["requests"])
    assert first["id"] < poll["id"] < sg["id"]
    assert first == {**first, "time": service.clock.now(), "method": "POST", "path": "/api/v1" + PATHS["text2image"],
                     "query": {}, "endpoint": "text2image", "region": "cn-beijing", "status": 200,
                     "request_id": created.json()["request_id"], "body": t2i_body()}
    assert first["headers"]["x-dashscope-async"] == "enable" and first["headers"]["content-type"] == "application/json"
    # task-query sends no request-id header: the id is the answer's, from its body
    assert (poll["endpoint"], poll["method"], poll["body"]) == ("task-query", "GET", None)
    assert poll["request_id"] == polled.json()["request_id"]
    assert (sg["region"], sg["request_id"]) == ("ap-southeast-1", singapore.json()["request_id"])


def test_keys_never_appear_in_the_journal():
    service = FakeDashScope(Config.load(admin_token="adm1n-t0ken-xyz", rate_limits={"enabled": False}), clock=ControllableClock())
    client = AppClient(create_app(service=service))
    try:
        check_keys_are_hidden(client)
    finally:
        client.close()


def check_keys_are_hidden(client):
    key = demo_key()
    body = {**t2i_body(prompt=f"my key is {key}"), "api_key": key, "parameters": {"token": 7}, "note": "adm1n-t0ken-xyz"}
    client.post(f"{API}/tasks?api_key={key}&page_size=5", headers=auth(key))
    client.post(API + PATHS["text2image"], json=body,
                headers={**auth(key, **ASYNC), "X-Api-Key": key, "X-DashScope-Mock-Scenario": "", "Cookie": "s=1"})
    text = client.get("/__admin/requests").text
    assert key not in text and "adm1n-t0ken-xyz" not in text
    listed, created = client.get("/__admin/requests").json()["requests"]
    assert listed["query"] == {"api_key": "sk-d***000", "page_size": "5"}
    assert {"authorization", "x-api-key", "cookie"}.isdisjoint(created["headers"])
    assert "x-dashscope-mock-scenario" in created["headers"]
    assert created["body"]["api_key"] == "sk-d***000" and created["body"]["parameters"] == {"token": "***"}
    assert created["body"]["input"]["prompt"] == "my key is sk-d***000" and created["body"]["note"] == "adm1***xyz"


def test_what_names_a_secret():
    assert all(map(secret_name, ["Authorization", "api_key", "X-Api-Key", "apiKey", "access_token", "Signature", "x-oss-secret"]))
    assert not any(map(secret_name, ["api_key_id", "OSSAccessKeyId", "model", "x-dashscope-async", "prompt"]))
    masker = Masker(["sk-secret-123456", None])
    assert masker.document({"a": ["x sk-secret-123456 y"], "password": 5}) == {"a": ["x sk-s***456 y"], "password": "***"}


def test_refused_requests_are_journaled_with_their_status(client):
    bad_json = client.post(API + PATHS["text2image"], content=b"{not json",
                           headers=auth(**ASYNC, **{"Content-Type": "application/json"}))
    no_key = client.post(API + PATHS["text2image"], json=t2i_body(), headers=ASYNC)
    client.get("/api/v2/services/aigc/text2image/image-synthesis")
    client.get(API + "/services/nothing", headers=auth())
    client.get(API + PATHS["text2image"], headers=auth())  # a wrong method: no route matched
    rows = journal(client)["requests"]
    assert [(r["status"], r["endpoint"]) for r in rows] == [(400, "text2image"), (401, "text2image"), (404, None),
                                                            (400, None), (400, None)]
    assert rows[0]["body"] == {"text": "{not json", "truncated": False, "bytes": 9}
    assert rows[0]["request_id"] == bad_json.json()["request_id"] and rows[1]["request_id"] == no_key.json()["request_id"]
    assert rows[2]["path"] == "/api/v2/services/aigc/text2image/image-synthesis" and rows[2]["request_id"]


def test_filters_and_the_last_n(client):
    for _ in range(3):
        t2i(client)
    t2i(client, region="ap-southeast-1")
    client.post(API + PATHS["text2image"], json=t2i_body(), headers=ASYNC)
    client.get(f"{API}/tasks", headers=auth())
    assert journal(client, endpoint="text2image")["total"] == 5
    assert journal(client, endpoint="text2image", region="cn-beijing", status=200)["total"] == 3
    last = journal(client, endpoint="text2image", limit=2)
    assert last["total"] == 5 and [r["region"] for r in last["requests"]] == ["ap-southeast-1", "cn-beijing"]
    assert [r["status"] for r in last["requests"]] == [200, 401]
    assert [r["endpoint"] for r in journal(client, status=401)["requests"]] == ["text2image"]
    assert journal(client, endpoint="task-list")["requests"][0]["method"] == "GET"
    assert journal(client, limit=0) == {"requests": [], "total": 6, "capacity": 1000}
    assert journal(client, limit=100)["total"] == 6 and len(journal(client, limit=100)["requests"]) == 6
    for bad in ({"endpoint": "txt2img"}, {"region": "mars-1"}, {"status": "abc"}, {"status": "42"}, {"limit": "-1"}):
        assert_error(client.get("/__admin/requests", params=bad), 400, "InvalidParameter")


def test_delete_and_reset_empty_it(client):
    t2i(client)
    assert client.request("DELETE", "/__admin/requests").json() == {"requests": [], "total": 0, "capacity": 1000}
    assert journal(client)["total"] == 0
    t2i(client)
    client.post("/__admin/reset")
    assert journal(client)["total"] == 0
    t2i(client)
    assert journal(client)["requests"][0]["id"] == 3  # ids keep increasing


def test_the_ring_keeps_the_last_entries_only_and_can_be_off():
    client = make_client(journal_entries=3)
    for _ in range(5):
        t2i(client)
    answer = journal(client)
    assert answer["capacity"] == 3 and answer["total"] == 3 and [r["id"] for r in answer["requests"]] == [3, 4, 5]
    client.close()
    off = make_client(journal_entries=0)
    t2i(off)
    assert journal(off) == {"requests": [], "total": 0, "capacity": 0}
    off.close()
    with pytest.raises(ValueError, match="journal_entries"):
        Config.load(journal_entries=-1)


def test_a_big_body_is_kept_only_in_part_and_marked():
    client = make_client(journal_body_bytes=1024)
    body = edit_body(images=(png_data_uri(),))
    sent = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth())
    assert sent.status_code == 200, sent.text
    [entry] = journal(client)["requests"]
    assert entry["body"]["truncated"] is True and entry["body"]["bytes"] > 1024
    assert entry["body"]["text"].startswith('{"model":"qwen-image-edit-plus"') and len(entry["body"]["text"]) <= 1024
    client.close()
    whole = make_client()
    whole.post(API + PATHS["multimodal-generation"], json=body, headers=auth())
    assert journal(whole)["requests"][0]["body"] == body  # under the default 64 KiB: parsed whole
    whole.close()


def test_result_downloads_and_streams_are_journaled_too(client):
    answer = client.post(API + PATHS["multimodal-generation"], json=edit_body(), headers=auth()).json()
    png_size(client, answer["output"]["choices"][0]["message"]["content"][0]["image"])
    stream = client.post(API + PATHS["multimodal-generation"], json=edit_body(), headers=auth(**{"X-DashScope-SSE": "enable"}))
    assert stream.status_code == 200
    rows = journal(client)["requests"]
    assert [(r["endpoint"], r["status"]) for r in rows] == [("multimodal-generation", 200), ("download", 200),
                                                            ("multimodal-generation", 200)]
    assert rows[1]["region"] == "cn-beijing" and rows[1]["body"] is None
    assert rows[2]["request_id"] == stream.headers["x-request-id"]


def test_a_dropped_connection_has_no_status(client):
    client.post("/__admin/scenarios", json={"effect": {"type": "drop_connection"}, "times": 1})
    with pytest.raises(ConnectionAbortedError):
        t2i(client)
    [entry] = journal(client)["requests"]
    assert (entry["endpoint"], entry["status"], entry["request_id"]) == ("text2image", None, None)


def test_health(client):
    assert client.get("/__admin/health").json() == {"status": "ok", "profile": "current", "default_region": "cn-beijing",
                                                    "version": metadata.version("dashscope-image-kit"), "pid": os.getpid(),
                                                    "store": "memory"}
    other = make_client(profile="2025-12")
    assert other.get("/__admin/health").json()["profile"] == "2025-12"
    other.close()


def test_unfreeze_runs_on_from_where_the_clock_stands():
    wall = [1000.0]
    clock = ControllableClock(lambda: wall[0])
    clock.advance(3600)
    wall[0] = 1010.0
    assert clock.unfreeze() == 4600.0 and not clock.frozen
    wall[0] = 1015.0
    assert clock.now() == 4605.0  # wall speed, from where it stood
    assert clock.freeze() == 4605.0 and clock.frozen
    wall[0] = 1100.0
    assert clock.now() == 4605.0
    assert clock.advance(10) == 4615.0
    clock.reset()
    assert clock.now() == 1100.0 and not clock.frozen


def test_unfreeze_over_the_admin_api_keeps_the_store():
    wall = [1_800_000_000.0]
    service = FakeDashScope(Config.load(rate_limits={"enabled": False}), clock=ControllableClock(lambda: wall[0]))
    client = AppClient(create_app(service=service))
    task_id = t2i(client).json()["output"]["task_id"]
    assert client.post("/__admin/clock/advance", json={"seconds": 7200}).json()["frozen"] is True
    wall[0] += 5
    state = client.post("/__admin/clock/unfreeze").json()
    assert state["frozen"] is False and state["now"] == 1_800_007_200.0
    assert client.get("/__admin/clock").json() == {**state, "frozen": False}
    wall[0] += 30
    assert client.get("/__admin/clock").json()["now"] == 1_800_007_230.0
    assert client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "SUCCEEDED"
    frozen = client.post("/__admin/clock/freeze").json()
    wall[0] += 30
    assert frozen["frozen"] is True and client.get("/__admin/clock").json()["now"] == frozen["now"]
    client.close()


def test_the_front_page_lists_the_base_urls_for_this_machine_only(client, service):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for region in ("cn-beijing", "ap-southeast-1", "us-east-1"):
        assert f"http://testserver/{region}/api/v1" in page.text
    data = client.get("/", headers={"Accept": "application/json"}).json()
    assert data["regions"]["us-east-1"]["base_url"] == "http://testserver/us-east-1/api/v1"
    assert (data["default_region"], data["openapi"]) == ("cn-beijing", "http://testserver/openapi.json")
    assert client.get("/cn-beijing/", headers={"Accept": "application/json"}).json() == data
    remote = AppClient(create_app(service=service), caller="192.0.2.7")
    assert_error(remote.get("/"), 403, "AccessDenied")
    remote.close()


@pytest.mark.parametrize("path", ["/api/v2/services/aigc/text2image/image-synthesis", "/v1/tasks",
                                  "/cn-shanghai/api/v1/tasks", "/services/aigc/text2image/image-synthesis"])
def test_a_wrong_prefix_is_told_the_base_urls(client, path):
    body = assert_error(client.get(path), 404, "NotFound")
    assert body["message"].startswith(f"{path} is not served here; the API's base URLs are ")
    for region in ("cn-beijing", "ap-southeast-1", "us-east-1"):
        assert f"http://testserver/{region}/api/v1" in body["message"]


def test_an_unknown_path_under_the_api_is_still_the_services_url_error(client):
    assert_error(client.get("/cn-beijing/api/v1/services/nothing", headers=auth()), 400, "InvalidParameter",
                 client.get("/api/v1/nothing").json()["message"])
    assert "url error" in client.get("/api/v1/nothing").json()["message"]
