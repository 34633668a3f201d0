"""Scenarios through the admin API: every effect, matching, counting, choosing by header, files."""

from __future__ import annotations

import json

import dashscope_schemas as ds
import pytest
from helpers import ASYNC, PATHS, AppClient, assert_error, auth, demo_key, make_service

from mock_server.app import create_app
from mock_server.scenarios import ScenarioError, parse

API = "/cn-beijing/api/v1"
CATALOG = ds.load_catalog()


def t2i(client, prompt="a cat", key=None, **headers):
    return client.post(API + PATHS["text2image"], json={"model": "qwen-image-plus", "input": {"prompt": prompt}},
                       headers=auth(key, **ASYNC, **headers))


def edit(client, n=1, **headers):
    body = {"model": "qwen-image-edit-plus", "parameters": {"n": n},
            "input": {"messages": [{"role": "user", "content": [{"image": "https://e.com/a.png"}, {"text": "x"}]}]}}
    return client.post(API + PATHS["multimodal-generation"], json=body, headers=auth(**headers))


def add(client, **scenario):
    response = client.post("/__admin/scenarios", json=scenario)
    assert response.status_code == 200, response.text
    return response.json()


def finished(client, service, created):
    service.clock.advance(3600)
    body = client.get(f"{API}/tasks/{created.json()['output']['task_id']}", headers=auth()).json()
    assert ds.validate(body, "task-query.response") == [], body
    return body


def test_task_failed_with_a_documented_error_then_used_up(client, service):
    add(client, match={"endpoint": "text2image"}, effect={"type": "task_failed", "error": "data_inspection_failed"}, times=1)
    body = finished(client, service, t2i(client))
    out = body["output"]
    moderated = CATALOG.error("data_inspection_failed")["message"]
    assert (out["task_status"], out["code"], out["message"]) == ("FAILED", "DataInspectionFailed", moderated)
    assert out["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 1} and "results" not in out
    assert finished(client, service, t2i(client))["output"]["task_status"] == "SUCCEEDED"
    listed = client.get("/__admin/scenarios").json()["scenarios"][0]
    assert (listed["remaining"], listed["applied"]) == (0, 1)


def test_partial_failure_counts_only_successes(client, service):
    add(client, match={"model": "wan2.5-i2i-preview"}, effect={"type": "partial_failure", "failed": 2})
    created = client.post(API + PATHS["image2image"], headers=auth(**ASYNC),
                          json={"model": "wan2.5-i2i-preview", "input": {"prompt": "p", "images": ["https://e.com/a.png"]},
                                "parameters": {"n": 3}})
    body = finished(client, service, created)
    results = body["output"]["results"]
    assert body["output"]["task_status"] == "SUCCEEDED"
    timeout = (False, "InternalError.Timeout")
    assert [("url" in r, r.get("code")) for r in results] == [(True, None), timeout, timeout]
    assert body["output"]["task_metrics"] == {"TOTAL": 3, "SUCCEEDED": 1, "FAILED": 2} and body["usage"] == {"image_count": 1}


def test_partial_failure_of_every_image_is_a_failed_task(client, service):
    add(client, match={"endpoint": "text2image"}, effect={"type": "partial_failure", "failed": 5})
    out = finished(client, service, t2i(client))["output"]
    assert (out["task_status"], out["code"]) == ("FAILED", "InternalError.Timeout")


def test_partial_failure_on_the_sync_endpoint_returns_fewer_images(client):
    add(client, match={"endpoint": "multimodal-generation"}, effect={"type": "partial_failure", "failed": 1})
    body = edit(client, n=3).json()
    assert body["usage"]["image_count"] == 2 == len(body["output"]["choices"][0]["message"]["content"])


def test_output_moderation_fails_the_task_after_it_ran(client, service):
    add(client, match={"prompt_contains": "forbidden"}, effect={"type": "output_moderation"})
    created = t2i(client, "a forbidden thing")
    service.clock.advance(2)
    task_id = created.json()["output"]["task_id"]
    assert client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "RUNNING"
    out = finished(client, service, created)["output"]
    assert (out["task_status"], out["code"]) == ("FAILED", "DataInspectionFailed")
    assert finished(client, service, t2i(client, "a cat"))["output"]["task_status"] == "SUCCEEDED"  # no match
    response = client.post(API + PATHS["multimodal-generation"], headers=auth(), json={
        "model": "qwen-image-max", "input": {"messages": [{"role": "user", "content": [{"text": "forbidden"}]}]}})
    assert (response.status_code, response.json()["code"]) == (400, "DataInspectionFailed")


@pytest.mark.parametrize("error", ["data_inspection_failed", "ip_infringement", "data_inspection_download", "arrearage",
                                   "rate_quota", "allocation_quota", "internal_error", "invalid_url"])
def test_reject_at_submission_with_any_documented_error(client, error):
    add(client, match={"endpoint": "text2image"}, effect={"type": "reject", "error": error})
    response = t2i(client)
    wire = CATALOG.error(error)
    assert response.status_code == wire["status"] and response.json()["code"] == wire["code"]
    assert ds.validate(response.json(), "error") == []
    assert client.get(f"{API}/tasks", headers=auth()).json()["total"] == 0  # nothing was created


def test_reject_with_an_explicit_status_code_and_message(client):
    add(client, effect={"type": "reject", "status": 400, "code": "InvalidParameter", "message": "custom"})
    response = edit(client)
    assert (response.status_code, response.json()["code"], response.json()["message"]) == (400, "InvalidParameter", "custom")


def test_latency_adds_queue_and_run_time(client, service):
    add(client, match={"endpoint": "text2image"}, effect={"type": "latency", "pending_seconds": 100, "running_seconds": 50})
    task_id = t2i(client).json()["output"]["task_id"]

    def status():
        return client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"]

    # default timing is 1 s PENDING and 15 s RUNNING: now 101 s and 65 s
    service.clock.advance(100)
    assert status() == "PENDING"
    service.clock.advance(10)   # 110
    assert status() == "RUNNING"
    service.clock.advance(55)   # 165
    assert status() == "RUNNING"
    service.clock.advance(1)    # 166
    assert status() == "SUCCEEDED"


def test_transport_faults(client):
    add(client, match={"endpoint": "task-query"}, effect={"type": "unavailable"}, times=1)
    response = client.get(f"{API}/tasks/x", headers=auth())
    assert (response.status_code, response.json()["code"]) == (503, "ServiceUnavailable")
    assert client.get(f"{API}/tasks/x", headers=auth()).status_code == 200
    add(client, match={"endpoint": "multimodal-generation"}, effect={"type": "malformed_body"}, times=1)
    response = edit(client)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()
    add(client, match={"endpoint": "task-list"}, effect={"type": "drop_connection"}, times=1)
    with pytest.raises(ConnectionAbortedError):
        client.get(f"{API}/tasks", headers=auth())
    assert client.get(f"{API}/tasks", headers=auth()).status_code == 200


def test_slow_answer_is_real_time(client):
    add(client, match={"endpoint": "task-list"}, effect={"type": "latency", "response_seconds": 0.3}, times=1)
    import time

    start = time.monotonic()
    assert client.get(f"{API}/tasks", headers=auth()).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_match_on_key_region_and_model(client, service):
    add(client, match={"api_key": demo_key("b"), "region": "cn-beijing", "model": "qwen-image-plus"},
        effect={"type": "reject", "error": "arrearage"})
    assert t2i(client).status_code == 200
    assert t2i(client, key=demo_key("b")).json()["code"] == "Arrearage"
    sg = client.post("/ap-southeast-1/api/v1" + PATHS["text2image"], headers=auth(demo_key("b", "ap-southeast-1"), **ASYNC),
                     json={"model": "qwen-image-plus", "input": {"prompt": "a cat"}})
    assert sg.status_code == 200


def test_choose_a_scenario_by_header_even_if_its_match_does_not_hold(client, service):
    add(client, id="boom", match={"endpoint": "image2image"}, effect={"type": "reject", "error": "internal_error"})
    add(client, name="quota", effect={"type": "reject", "error": "allocation_quota"})
    assert t2i(client, **{"X-DashScope-Mock-Scenario": "boom"}).json()["code"] == "InternalError"
    assert t2i(client, **{"X-DashScope-Mock-Scenario": "quota"}).json()["code"] == "Throttling.AllocationQuota"



def test_a_header_naming_no_scenario_is_the_fakes_own_error_listing_the_live_ones(client, service):
    add(client, name="quota", effect={"type": "reject", "error": "allocation_quota"})
    add(client, effect={"type": "unavailable"}, match={"endpoint": "image2image"})
    refused = t2i(client, **{"X-DashScope-Mock-Scenario": "nope"})
    assert_error(refused, 400, "MockScenarioNotFound", "no scenario named 'nope' (live: quota, sc-2)")
    assert service.store.counts()["tasks"] == 0  # nothing was made
    client.request("DELETE", "/__admin/scenarios")
    assert t2i(client, **{"X-DashScope-Mock-Scenario": "nope"}).json()["message"] == "no scenario named 'nope' (live: none)"


def test_a_used_up_scenario_named_by_the_header_lets_requests_through(client):
    add(client, name="once", effect={"type": "reject", "error": "arrearage"}, times=1)
    assert t2i(client, **{"X-DashScope-Mock-Scenario": "once"}).json()["code"] == "Arrearage"
    assert t2i(client, **{"X-DashScope-Mock-Scenario": "once"}).status_code == 200


def test_only_when_chosen_acts_on_requests_naming_it_only(client):
    listed = add(client, name="outage", effect={"type": "unavailable"}, only_when_chosen=True)
    assert listed["only_when_chosen"] is True
    assert t2i(client).status_code == 200 and edit(client).status_code == 200
    assert t2i(client, **{"X-DashScope-Mock-Scenario": "outage"}).status_code == 503
    assert add(client, effect={"type": "unavailable"})["only_when_chosen"] is False
    assert t2i(client).status_code == 503
    bad = client.post("/__admin/scenarios", json={"effect": {"type": "unavailable"}, "only_when_chosen": "yes"})
    assert bad.status_code == 400 and "only_when_chosen" in bad.json()["message"]


def test_a_reject_without_match_hits_every_api_endpoint_but_not_oss(client, service):
    created = t2i(client).json()["output"]["task_id"]
    add(client, effect={"type": "reject", "error": "arrearage"})
    calls = {"task-query": ("GET", f"{API}/tasks/{created}"), "task-cancel": ("POST", f"{API}/tasks/{created}/cancel"),
             "task-list": ("GET", f"{API}/tasks"), "upload-policy": ("GET", f"{API}/uploads?action=getPolicy&model=qwen-image-edit-plus")}
    for name, (method, path) in calls.items():
        assert client.request(method, path, headers=auth()).json()["code"] == "Arrearage", name
    assert t2i(client).json()["code"] == "Arrearage" and edit(client).json()["code"] == "Arrearage"
    [scenario] = service.scenarios.all()
    assert scenario.applies_to == {name for name, e in CATALOG.endpoints.items() if e.under_api}
    assert len(scenario.applies_to) == 8 and not {"upload", "download"} & scenario.applies_to


def test_list_delete_clear_and_reset(client, service):
    first = add(client, effect={"type": "unavailable"})
    add(client, effect={"type": "malformed_body", "status": 502})
    assert [s["id"] for s in client.get("/__admin/scenarios").json()["scenarios"]] == [first["id"], "sc-2"]
    assert client.request("DELETE", f"/__admin/scenarios/{first['id']}").json() == {"deleted": first["id"]}
    assert client.request("DELETE", "/__admin/scenarios/nope").status_code == 404
    assert edit(client).status_code == 502
    client.post("/__admin/reset")
    assert client.get("/__admin/scenarios").json()["scenarios"] == [] and edit(client).status_code == 200
    add(client, effect={"type": "unavailable"})
    assert client.request("DELETE", "/__admin/scenarios").json()["scenarios"] == []


@pytest.mark.parametrize("bad", [
    {"effect": {"type": "explode"}},
    {"effect": {"type": "task_failed", "error": "no_such_error"}},
    {"match": {"endpoint": "task-query"}, "effect": {"type": "task_failed"}},
    {"match": {"endpoint": "tasks"}, "effect": {"type": "unavailable"}},
    {"match": {"region": "mars-1"}, "effect": {"type": "unavailable"}},
    {"match": {"colour": "red"}, "effect": {"type": "unavailable"}},
    {"effect": {"type": "unavailable", "status": 404}},
    {"effect": {"type": "latency", "response_seconds": 3600}},
    {"effect": {"type": "latency", "pending_seconds": -1}},
    {"effect": {"type": "partial_failure", "failed": 0}},
    {"effect": {"type": "reject"}},
    {"effect": {"type": "reject", "error": "arrearage"}, "times": 0},
    {"effect": {"type": "reject", "error": "arrearage"}, "times": True},
    {"effect": {"type": "unavailable"}, "surprise": 1},
    [1, 2],
])
def test_bad_scenarios_are_refused_with_the_envelope(client, bad):
    response = client.post("/__admin/scenarios", json=bad)
    assert response.status_code == 400 and ds.validate(response.json(), "error") == []
    assert client.get("/__admin/scenarios").json()["scenarios"] == []


def test_scenarios_load_from_the_config_and_come_back_after_reset():
    scenarios = [{"name": "always-arrears", "match": {"endpoint": "text2image"}, "effect": {"type": "reject", "error": "arrearage"}}]
    service = make_service(scenarios=scenarios)
    client = AppClient(create_app(service=service))
    try:
        assert t2i(client).json()["code"] == "Arrearage"
        client.post("/__admin/reset")
        assert t2i(client).json()["code"] == "Arrearage"
    finally:
        client.close()
    with pytest.raises(ScenarioError):
        make_service(scenarios=[{"effect": {"type": "nope"}}])


def test_serve_loads_a_scenario_file(tmp_path, capsys):
    from mock_server.cli import _scenario_file, main

    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps({"scenarios": [{"effect": {"type": "unavailable"}}]}))
    assert _scenario_file(str(path)) == [{"effect": {"type": "unavailable"}}]
    path.write_text(json.dumps([{"effect": {"type": "bogus"}}]))
    assert main(["serve", "--scenarios", str(path), "--port", "1"]) == 2
    assert "effect.type" in capsys.readouterr().err


def test_parse_is_strict_about_types():
    with pytest.raises(ScenarioError, match="effect.failed: .* is not of type"):
        parse({"effect": {"type": "partial_failure", "failed": "2"}}, CATALOG, "x")
    scenario = parse({"match": {"prompt_contains": "cat"}, "effect": {"type": "output_moderation"}}, CATALOG, "x")
    assert scenario.matches({"endpoint": "text2image", "prompt": "a cat"})
    assert not scenario.matches({"endpoint": "task-query", "prompt": "a cat"})  # not an effect for polling
    assert not scenario.matches({"endpoint": "text2image", "prompt": "a dog"})
