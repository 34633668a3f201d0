"""No cost grows with the number of stored tasks, memory is given back on the clock, and a shared
fake bounds what one client can hold: slow requests, uploads per policy, kept prompts.

Costs are shown by what a request touches (how many tasks it observes), never by timing; the
benchmark (bench/bench_fake.py) measures the speed ratios."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import socket
import threading

import httpx
import pytest
from helpers import ASYNC, PATHS, AppClient, auth, demo_key, make_service, serving
from PIL import Image

from mock_server import housekeeping
from mock_server.app import create_app
from mock_server.domain import tasks as domain
from mock_server.service import FakeDashScope
from mock_server.transport import protocol_with_head_timeout

API = "/cn-beijing/api/v1"
STORED = 3000


def t2i(prompt: str = "a cat") -> dict:
    return {"model": "qwen-image-plus", "input": {"prompt": prompt}}


def fill(service: FakeDashScope, count: int, model: str = "qwen-image-plus") -> None:
    """`count` tasks of account a in Beijing, straight through the backend (no limits in the way)."""
    key = service.keys.lookup(demo_key())
    request = service.generation.check("text2image", {"model": model, "input": {"prompt": "p"}}, dict(ASYNC), "cn-beijing")
    for _ in range(count):
        service.generation.create_task(key, request)


@pytest.fixture
def observed(monkeypatch) -> list[str]:
    """The ids of the tasks the backend observes (computes the state of), in order."""
    seen: list[str] = []
    real = domain.observe

    def counting(task, now, **kwargs):
        seen.append(task.task_id)
        return real(task, now, **kwargs)

    monkeypatch.setattr(domain, "observe", counting)
    return seen


def test_listing_touches_the_page_not_the_store(observed):
    service = make_service()
    service.clock.advance(0)
    fill(service, STORED)
    client = AppClient(create_app(service=service))
    observed.clear()
    page = client.get(f"{API}/tasks", params={"page_size": 10, "page_no": 7}, headers=auth()).json()
    assert page["total"] == STORED and len(page["data"]) == 10 and len(observed) == 10
    observed.clear()
    filtered = client.get(f"{API}/tasks", params={"status": "PENDING", "model_name": "qwen-image-plus", "page_size": 5,
                                                  "start_time": "20000101000000"}, headers=auth()).json()
    assert filtered["total"] == STORED and len(observed) == 5
    client.close()


def test_creating_with_rate_limits_on_counts_active_tasks_from_an_index(observed):
    service = make_service(rate_limits={"enabled": True, "scale": 1.0, "task_api_per_second": 20})
    service.clock.advance(0)
    fill(service, STORED)  # every one still PENDING: far over qwen-image-plus's concurrency limit
    client = AppClient(create_app(service=service))
    observed.clear()
    refused = client.post(API + PATHS["text2image"], json=t2i(), headers=auth(**ASYNC))
    assert (refused.status_code, refused.json()["code"]) == (429, "Throttling.RateQuota")
    assert observed == []  # the count came from the store's index, no task was looked at
    service.clock.advance(3600)  # all of them finished: the limit lets the next one in
    assert client.post(API + PATHS["text2image"], json=t2i(), headers=auth(**ASYNC)).status_code == 200
    client.close()


def test_a_clock_jump_frees_expired_records_before_the_answer():
    service = make_service()
    service.clock.advance(0)
    fill(service, 500)
    client = AppClient(create_app(service=service))
    body = {"model": "qwen-image-edit-plus", "input": {"messages": [{"role": "user", "content": [
        {"image": "https://e.com/a.png"}, {"text": "x"}]}]}, "parameters": {"n": 2}}
    assert client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).status_code == 200
    counts = service.store.counts()
    assert counts["tasks"] == 500 and counts["images"] == 502
    client.post("/__admin/clock/advance", json={"seconds": 25 * 3600})
    assert service.store.counts()["tasks"] == 0  # tasks live 24 h
    # Result images live until their last URL can expire: a synchronous answer's are signed for
    # about 7 days (observation sync-url-7-days), a task's 24 h after it ends.
    assert service.store.counts()["images"] == 502
    client.post("/__admin/clock/advance", json={"seconds": 7 * 24 * 3600})
    assert service.store.counts() == {"tasks": 0, "images": 0, "uploads": 0, "upload_bytes": 0}
    client.close()


def test_the_sweep_yields_between_batches():
    service = make_service()
    service.clock.advance(0)
    fill(service, 250)
    service.clock.advance(25 * 3600)
    calls: list[int] = []
    real_sweep = service.sweep

    def counted(limit):
        calls.append(limit)
        return real_sweep(limit)

    service.sweep = counted  # type: ignore[method-assign]
    asyncio.run(housekeeping.sweep_all(service, batch=100))
    assert service.store.counts()["tasks"] == 0 and len(calls) >= 4  # 500 records (tasks, images) in batches of 100


def test_the_server_sweeps_on_its_own_while_it_runs(monkeypatch):
    """Lifespan on: with no request at all, what the clock expired is freed by the background sweep."""
    monkeypatch.setattr(housekeeping, "SWEEP_INTERVAL", 0.01)
    service = make_service()
    service.clock.advance(0)
    fill(service, 50)
    with serving(create_app(service=service), lifespan="on"):
        service.clock.advance(49 * 3600)  # not through the admin API: only the background sweep can free them
        freed = threading.Event()
        for _ in range(500):  # waits for the sweeper task (an event), at most about 5 s
            if service.store.counts()["tasks"] == 0:
                freed.set()
                break
            freed.wait(0.01)
        assert freed.is_set(), service.store.counts()


def test_a_task_keeps_the_prompt_the_service_keeps_not_the_body():
    service = make_service()
    client = AppClient(create_app(service=service))
    huge = "x" * (5 * 1024 * 1024)
    task_id = client.post(API + PATHS["text2image"], json=t2i(huge), headers=auth(**ASYNC)).json()["output"]["task_id"]
    task = service.store.get(task_id)
    limit = service.catalog.model("qwen-image-plus").prompt.max_chars
    assert len(task.orig_prompt) == limit and len(task.actual_prompt) < limit + 100
    client.close()


def test_huge_scenario_delays_are_just_never():
    service = make_service()
    client = AppClient(create_app(service=service))
    assert client.post("/__admin/scenarios", json={"effect": {"type": "latency", "pending_seconds": 1e300}}).status_code == 200
    task_id = client.post(API + PATHS["text2image"], json=t2i(), headers=auth(**ASYNC)).json()["output"]["task_id"]
    client.post("/__admin/clock/advance", json={"seconds": 3600})
    assert client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "PENDING"
    assert client.get(f"{API}/tasks", params={"status": "PENDING"}, headers=auth()).json()["total"] == 1
    client.close()


# --- bounded resources ------------------------------------------------------------------------------


def _stalled(path: str, headers: list[tuple[bytes, bytes]], first_chunk: bytes) -> list[dict]:
    """What the app sends a client that sends the head and `first_chunk` of the body, then nothing."""
    app = create_app(service=make_service(read_timeout_seconds=0.05))
    sent: list[dict] = []
    stalled = asyncio.Event()  # never set

    async def run():
        messages = iter([{"type": "http.request", "body": first_chunk, "more_body": True}])

        async def receive():
            try:
                return next(messages)
            except StopIteration:
                await stalled.wait()

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "server": ("t", 80),
                 "client": ("127.0.0.1", 1), "path": path, "raw_path": b"", "root_path": "", "query_string": b"",
                 "headers": headers}
        await app(scope, receive, send)

    asyncio.run(run())
    return sent


def test_a_body_that_stops_arriving_is_a_400_after_the_read_timeout():
    sent = _stalled(API + PATHS["text2image"], [(b"authorization", f"Bearer {demo_key()}".encode()),
                                                (b"content-type", b"application/json"), (b"x-dashscope-async", b"enable")],
                    b'{"model": "qwen')
    assert sent[0]["status"] == 400
    body = json.loads(sent[1]["body"])
    assert body["code"] == "InvalidParameter" and "not received within" in body["message"]


def test_an_upload_form_that_stops_arriving_is_an_oss_request_timeout():
    sent = _stalled("/__oss-upload", [(b"content-type", b"multipart/form-data; boundary=x")],
                    b'--x\r\nContent-Disposition: form-data; name="key"\r\n\r\nabc')
    assert sent[0]["status"] == 400
    assert b"<Code>RequestTimeout</Code>" in sent[1]["body"]


@pytest.mark.parametrize("implementation", ["httptools", "h11"])
def test_a_connection_that_never_completes_its_request_head_is_closed(implementation):
    with serving(create_app(service=make_service()), http=protocol_with_head_timeout(0.2, implementation)) as port:
        for opening in (b"", b"GET /api/v1/tasks/x HTTP/1.1\r\nHost: x\r\n"):
            conn = socket.create_connection(("127.0.0.1", port))
            conn.sendall(opening)
            conn.settimeout(10)  # a bound on the wait for the server's close, not the behaviour itself
            assert conn.recv(100) == b""  # closed by the server, with no answer
            conn.close()
        # A whole request on a kept-alive connection is served as usual, twice.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(2):
                assert client.get("/api/v1/tasks/x", headers=auth()).status_code == 200


def _png(size: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return buf.getvalue() + b"\0" * (size - len(buf.getvalue()))


def test_one_policy_uploads_at_most_one_files_worth(service, client):
    service.uploader = dataclasses.replace(service.uploader, max_file_bytes=1000)

    def upload(policy: dict, name: str, size: int):
        form = {"OSSAccessKeyId": policy["oss_access_key_id"], "Signature": policy["signature"], "policy": policy["policy"],
                "key": f"{policy['upload_dir']}/{name}"}
        return client.post("/__oss-upload", data=form, files={"file": (name, _png(size), "image/png")})

    def new_policy() -> dict:
        return client.get(f"{API}/uploads", params={"action": "getPolicy", "model": "qwen-image-edit-plus"},
                          headers=auth()).json()["data"]

    policy = new_policy()
    assert upload(policy, "a.png", 600).status_code == 200
    second = upload(policy, "b.png", 600)  # 1,200 bytes through a policy of 1,000
    assert second.status_code == 400 and b"<Code>EntityTooLarge</Code>" in second.content
    assert upload(policy, "c.png", 400).status_code == 200  # exactly the rest is fine
    assert service.store.counts()["upload_bytes"] == 1000
    assert upload(new_policy(), "d.png", 1000).status_code == 200  # another policy, another allowance


def test_a_declared_content_length_that_is_not_a_decimal_is_a_400(client):
    for declared in ("²".encode(), b"1e3", b"9" * 40):
        response = client.post(API + PATHS["text2image"], content=b"{}",
                               headers=auth(**ASYNC, **{"Content-Type": "application/json", "Content-Length": declared}))
        assert response.status_code == 400 and response.json()["code"] == "InvalidParameter", declared
