"""Proof on real traffic: exchanges recorded against the real service (fixtures/real, built by
tools/real_recordings.py, each with its public source and date) against the kit.

- the kit's schemas accept every real answer of a route in scope;
- the fake, asked the same (after the state the recording implies), answers with the same shape
  (keys and JSON types), status, code, fixed message, content type and request-id headers;
- `dashscope-contract recheck fixtures/real` finds no drift;
- every recording names the observations it supports, and they name it back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dashscope_schemas as ds
import pytest
from dashscope_schemas.evidence import observations
from helpers import ASYNC, FIXTURES, AppClient, auth, make_service

from contract_tests.cassette import load, recheck
from contract_tests.exchange import Exchange
from contract_tests.recording_diff import normalize
from mock_server.app import create_app

REAL = FIXTURES / "real"
EXCHANGES = {e.notes["name"]: e for e in load(REAL)}
CATALOG = ds.load_catalog()
API = "/api/v1"
REQUEST_ID_HEADERS = ("x-request-id", "x-dashscope-requestid")
# x-request-id arrived on the model gateway's answers about 2024-11 (observation request-id-headers):
# the headers of older recordings of generation routes say nothing about today's.
HEADERS_SINCE = "2024-11"


def test_the_set_is_real_sourced_and_scrubbed():
    assert len(EXCHANGES) >= 12
    text = (REAL / "cassette.jsonl").read_text(encoding="utf-8")
    assert "LTAI" not in text and "Signature=SCRUBBED" in text  # signatures and OSS key ids scrubbed
    for name, exchange in EXCHANGES.items():
        assert exchange.notes["source"].startswith("cnblogs/dashscope-sdk ") and exchange.notes["recorded"][:2] == "20", name
        assert exchange.request_headers.get("Authorization") == "sk-***", name


def test_recordings_and_observations_name_each_other():
    known = observations()
    for name, exchange in EXCHANGES.items():
        for cited in exchange.notes["observations"]:
            assert name in known[cited].fixtures, (name, cited)
    named = {f for o in known.values() for f in o.fixtures}
    assert named <= set(EXCHANGES), named - set(EXCHANGES)


@pytest.mark.parametrize("name", sorted(EXCHANGES))
def test_the_kits_schemas_accept_every_real_answer_in_scope(name):
    exchange = EXCHANGES[name]
    endpoint = CATALOG.endpoints.get(exchange.endpoint)
    if endpoint is None:  # a route outside the kit (text generation): its answer is evidence, not contract
        assert exchange.endpoint == "text-generation"
        return
    if exchange.status >= 400:
        assert ds.validate(exchange.json, "error") == []
    else:
        assert endpoint.response_schema is not None
        assert ds.validate(exchange.json, endpoint.response_schema) == [], name


def test_recheck_of_the_real_recordings_finds_no_drift():
    reporter = recheck(REAL, "current")
    assert reporter.findings == {}, [f.to_dict() for f in reporter.findings.values()]
    assert reporter.checks["response_schema_conformance"]["passed"] == len(EXCHANGES)


# --- the fake, asked the same --------------------------------------------------------------------


def _client() -> tuple[AppClient, Any]:
    service = make_service()
    service.clock.advance(0)  # frozen: the test moves time
    return AppClient(create_app(service=service)), service


def _create(client: AppClient, path: str, body: dict[str, Any]) -> str:
    response = client.post(API + path, json=body, headers=auth(**ASYNC))
    assert response.status_code == 200, response.text
    return response.json()["output"]["task_id"]


def _t2i(client: AppClient) -> str:
    return _create(client, CATALOG.endpoints["text2image"].path, {"model": "qwen-image-plus", "input": {"prompt": "a cat"}})


def _same(client: AppClient, exchange: Exchange, **changes: Any) -> Any:
    """The recorded request again, to the fake (path, body and headers may be changed)."""
    path = changes.get("path", exchange.url.split("/api/v1", 1)[1])
    headers = {**{k: v for k, v in exchange.request_headers.items() if k != "Authorization"},
               **auth(), **changes.get("headers", {})}
    body = changes.get("body", exchange.request_body)
    return client.request(exchange.method, API + path, headers=headers, json=body)


def _asked_again(client, service, exchange):
    return _same(client, exchange)


def _with_task(seconds: float, path: str | None = None) -> Callable[..., Any]:
    """Create a task, let `seconds` pass (2: RUNNING, 600: SUCCEEDED), then ask the recorded
    request again, at `path` (formatted with the task's id) when given."""

    def replay(client, service, exchange):
        task_id = _t2i(client)
        service.clock.advance(seconds)
        return _same(client, exchange, **({"path": path.format(task_id=task_id)} if path else {}))

    return replay


def _bad_key(client, service, exchange):
    # The gateway answers every route alike; the kit's synchronous route stands for text generation.
    body = {"model": "qwen-image-max", "input": {"messages": [{"role": "user", "content": [{"text": "a"}]}]}}
    return client.post(API + CATALOG.endpoints["multimodal-generation"].path, json=body,
                       headers={"Authorization": "Bearer sk-0123456789abcdef0123456789abcdef"})


def _stream_refused(client, service, exchange):
    body = {"model": "qwen-image-max", "input": {"messages": [{"role": "user", "content": [{"text": "a"}]}]},
            "parameters": {"n": 2}}
    return client.post(API + CATALOG.endpoints["multimodal-generation"].path, json=body,
                       headers=auth(**{"X-DashScope-SSE": "enable"}))


def _created_i2i(client, service, exchange):
    body = {"model": "wan2.5-i2i-preview", "input": {"prompt": "a cat", "images": ["https://e.com/a.png"]}}
    return client.post(API + CATALOG.endpoints["image2image"].path, json=body, headers=auth(**ASYNC))


def _created_t2i(client, service, exchange):
    return _same(client, exchange, body={"model": "qwen-image-plus", "input": {"prompt": "a cat"}})


def _created_image_generation(client, service, exchange):
    body = {"model": "qwen-image-plus", "input": {"messages": [{"role": "user", "content": [{"text": "a cat"}]}]},
            "parameters": {"is_async": True}}
    return _same(client, exchange, body=body)


# name -> how to put the fake in the recorded situation and ask it the same.
REPLAYS: dict[str, Callable[..., Any]] = {
    "multimodal-generation-qwen-image-max": _asked_again, "task-query-unknown": _asked_again, "upload-policy": _asked_again,
    "task-query-running": _with_task(2, "/tasks/{task_id}"), "task-list": _with_task(600),
    "task-cancel-not-pending": _with_task(600, "/tasks/{task_id}/cancel"), "auth-error": _bad_key,
    "sse-validation-error": _stream_refused,
    # Models outside the catalog: the same route and situation with a model of the catalog.
    "image2image-created": _created_i2i, "text2image-created": _created_t2i, "image-generation-created": _created_image_generation,
}
# Answers whose shape belongs to a model outside the catalog (wanx-v1's results without prompts,
# style repaint's error_code and style_index): the schemas accept them, the fake has no such model.
NOT_REPLAYED = {"task-query-succeeded-text2image", "task-query-succeeded-image-generation"}


def test_every_recording_is_replayed_or_says_why_not():
    assert set(REPLAYS) | NOT_REPLAYED == set(EXCHANGES) and not set(REPLAYS) & NOT_REPLAYED


def _events(text: str) -> list[dict[str, str]]:
    found = []
    for block in text.strip().split("\n\n"):
        event = {}
        for line in block.strip().splitlines():
            key, _, value = line.partition(":")
            event[key or "comment"] = value
        found.append(event)
    return found


def _as_exchange(exchange: Exchange, response: Any) -> Exchange:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return Exchange(exchange.method, str(response.url), exchange.endpoint, {}, exchange.request_body, response.status_code,
                    dict(response.headers), body)


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_the_fake_answers_the_same_request_with_the_real_shape(name):
    real = EXCHANGES[name]
    client, service = _client()
    try:
        response = REPLAYS[name](client, service, real)
    finally:
        client.close()
    fake = _as_exchange(real, response)
    assert fake.status == real.status, response.text
    assert response.headers.get("content-type") == real.response_headers.get("content-type", response.headers.get("content-type"))
    if isinstance(real.response_body, str):  # a stream: the same events, each with the same data shape
        real_events, fake_events = _events(real.response_body), _events(response.text)
        assert [(e["id"], e["event"], e["comment"]) for e in fake_events] == [(e["id"], e["event"], e["comment"]) for e in real_events]
        real_data, fake_data = json.loads(real_events[0]["data"]), json.loads(fake_events[0]["data"])
        assert set(fake_data) == set(real_data) and fake_data["code"] == real_data["code"]
        request_id = fake_data["request_id"]
    else:
        assert normalize(fake)["body"] == normalize(real)["body"], (normalize(fake)["body"], normalize(real)["body"])
        assert fake.code == real.code
        if real.code:  # a fixed text of the service: the same words
            assert fake.json["message"] == real.json["message"]
        request_id = fake.json["request_id"]
    if real.notes["recorded"] >= HEADERS_SINCE or not CATALOG.endpoints.get(real.endpoint, CATALOG.endpoints["task-query"]).generates:
        real_names = {h for h in REQUEST_ID_HEADERS if h in real.response_headers}
        assert {h for h in REQUEST_ID_HEADERS if h in response.headers} == real_names, dict(response.headers)
        assert all(response.headers[h] == request_id for h in real_names)


def test_real_times_are_what_the_fake_writes():
    """The list's epoch milliseconds and the sync URL's 7-day signature, in the fake's own answers."""
    client, service = _client()
    try:
        _t2i(client)
        service.clock.advance(600)
        item = client.get(f"{API}/tasks", headers=auth()).json()["data"][0]
        assert item["gmt_create"] == int(service.clock.now() * 1000) - 600_000
        assert item["end_time"] > item["start_time"] >= item["gmt_create"]
        real = EXCHANGES["multimodal-generation-qwen-image-max"]
        answered = _same(client, real)
        url = answered.json()["output"]["choices"][0]["message"]["content"][0]["image"]
        expires = int(url.split("Expires=")[1].split("&")[0])
        assert expires - service.clock.now() == pytest.approx(605_800, abs=1)
        real_url = real.json["output"]["choices"][0]["message"]["content"][0]["image"]
        assert int(real_url.split("Expires=")[1].split("&")[0]) - 1781172774 == pytest.approx(605_800, abs=5)
    finally:
        client.close()


def test_the_cli_recheck_of_the_real_recordings_exits_0(tmp_path: Path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "contract_tests.cli", "recheck", str(REAL), "--report", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and "no drift" in done.stdout, done.stdout + done.stderr
