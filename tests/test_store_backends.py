"""One store contract, three backends (memory:, sqlite:, redis:): records by id, the task list's
indexes, due status changes, expiry in batches, uploads; then what only the shared stores do
(cells, reopening, schema versions, index plans, 503 when the store is away), and the whole
fake on each backend, through its HTTP API."""

from __future__ import annotations

import math
import sqlite3
import time
import uuid
from dataclasses import fields, replace

import pytest
from helpers import ASYNC, PATHS, AppClient, auth, demo_key
from redis_helpers import redis_server

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.domain import tasks as domain
from mock_server.domain.tasks import ImageOutcome, Task, Timing
from mock_server.service import FakeDashScope
from mock_server.store import ImageRecord, TaskQuery
from mock_server.stores import SCHEMA_VERSION, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, SharedStore, StoreVersionError, open_store
from mock_server.stores.sqlite import SQLiteStore
from mock_server.uploads import UploadRecord

TTL = 86400.0
API = "/cn-beijing/api/v1"


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield port


def url_of(kind: str, request, tmp_path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite://{tmp_path}/state.db"
    # A prefix per test: one server, every test's state apart.
    return f"redis://127.0.0.1:{request.getfixturevalue('redis_port')}/0?prefix=t-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request, tmp_path):
    return url_of(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request, tmp_path):
    return url_of(request.param, request, tmp_path)


@pytest.fixture
def store(store_url):
    opened = open_store(store_url, TTL)
    yield opened
    if isinstance(opened, SharedStore):
        opened.close()


# How a task keeps its rewritten prompt: a flag (or, in older layouts, the text).
_PROMPT = {"prompt_extend": True} if "prompt_extend" in {f.name for f in fields(Task)} else {"actual_prompt": "a cat."}


def make_task(task_id, *, account="acct", region="cn-beijing", model="m1", key="k1", at=1000.0, mode="time", pending=1.0, running=15.0):
    return domain.create(Task(task_id=task_id, account=account, region=region, api_key_id=key, model=model, endpoint="text2image",
                              orig_prompt="a cat", **_PROMPT, seed=7, width=8, height=8,
                              timing=Timing(mode, pending, running),
                              outcomes=(ImageOutcome(f"img-{task_id}"), ImageOutcome(None, "X", "y")),
                              failure=None, request_id=f"req-{task_id}"), at)


def ids(page):
    return [t.task_id for t in page[0]], page[1]


# --- the contract, on every backend ---------------------------------------------------------------

def test_tasks_by_id_and_by_index_newest_first(store):
    tasks = [make_task("t1", at=100), make_task("t2", at=200, model="m2"), make_task("t3", at=200, key="k2"),
             make_task("t4", at=300, account="other"), make_task("t5", at=400, region="ap-southeast-1")]
    for task in tasks:
        store.create(task)
    assert store.get("t2") == tasks[1] and store.get("nope") is None
    with pytest.raises(KeyError):
        store.create(tasks[0])
    with pytest.raises(KeyError):
        store.update(make_task("ghost"))
    everything = TaskQuery("acct", "cn-beijing")
    assert ids(store.query(everything, 0, 10)) == (["t3", "t2", "t1"], 3)  # equal times: the later one first
    assert ids(store.query(everything, 1, 1)) == (["t2"], 3)
    assert ids(store.query(everything, 5, 10)) == ([], 3)
    assert store.query(everything)[1] == 3  # limit 0: the count alone
    assert ids(store.query(replace(everything, model="m2"), 0, 10)) == (["t2"], 1)
    assert ids(store.query(replace(everything, api_key_id="k2"), 0, 10)) == (["t3"], 1)
    assert ids(store.query(replace(everything, model="m1", api_key_id="k1"), 0, 10)) == (["t1"], 1)
    assert ids(store.query(replace(everything, submitted_from=150, submitted_to=200), 0, 10)) == (["t3", "t2"], 2)
    assert ids(store.query(replace(everything, submitted_from=math.nextafter(200, math.inf)), 0, 10)) == ([], 0)
    assert ids(store.query(TaskQuery("other", "cn-beijing"), 0, 10)) == (["t4"], 1)
    # A status change moves the task between the status indexes, and nowhere else.
    running = domain.observe(tasks[0], 105)
    assert running.status == domain.RUNNING
    store.update(running)
    assert store.get("t1") == running
    assert ids(store.query(replace(everything, status=domain.RUNNING), 0, 10)) == (["t1"], 1)
    assert ids(store.query(replace(everything, status=domain.PENDING), 0, 10)) == (["t3", "t2"], 2)
    assert ids(store.query(replace(everything, model="m1", status=domain.RUNNING), 0, 10)) == (["t1"], 1)


def test_due_status_changes_soonest_first_then_off_the_schedule(store):
    store.create(make_task("slow", at=0, pending=5))
    store.create(make_task("fast", at=0, pending=1))
    store.create(make_task("polled", at=0, mode="polls", pending=1, running=1))  # changes only when polled
    assert store.due(0.5, 10) == []
    found = store.due(6, 10)
    assert [t.task_id for t in found] == ["fast", "slow"]
    assert store.due(6, 10) == []  # taken: written back by update(), which schedules the next change
    for task in found:
        store.update(domain.observe(task, 6))
    assert [t.task_id for t in store.due(100, 1)] == ["fast"]  # at most `limit`
    assert [t.task_id for t in store.due(100, 5)] == ["slow"]


def test_expiry_deletes_in_bounded_batches(store):
    for n in range(5):
        store.create(make_task(f"t{n}", at=n))
        store.put_image(ImageRecord(f"i{n}", "p", 1, 0, 8, 8, expires=TTL + n))
    store.put_upload(UploadRecord("dir/a.png", b"12345", "image/png", "acct", "cn-beijing", TTL + 10, "dir"))
    assert store.counts() == {"tasks": 5, "images": 5, "uploads": 1, "upload_bytes": 5}
    assert store.expire(TTL + 1.5, limit=3) == 3  # t0, t1, then i0: at most `limit`
    assert store.get("t1") is None and store.get("t2") is not None and store.get_image("i0") is None
    assert store.expire(TTL + 1.5) == 1  # i1
    assert store.get_image("i1") is None and store.get_image("i2") is not None
    assert store.query(TaskQuery("acct", "cn-beijing"))[1] == 3  # gone from the indexes too
    assert store.expire(TTL + 100) == 7
    assert store.counts() == {"tasks": 0, "images": 0, "uploads": 0, "upload_bytes": 0}
    assert store.uploaded_bytes("dir") == 0 and store.expire(TTL + 100) == 0


def test_images_and_uploads(store):
    record = ImageRecord("img", "a cat.", 7, 1, 640, 480, 5000.0)
    store.put_image(record)
    assert store.get_image("img") == record and store.get_image("other") is None
    upload = UploadRecord("d/1/x.png", bytes(range(256)), "image/png", "acct", "cn-beijing", 9000.0, "d/1")
    assert store.put_upload(upload) is True
    assert store.put_upload(replace(upload, data=b"other")) is False  # no overwriting
    assert store.put_upload(replace(upload, key="d/1/y.png", data=b"abc")) is True
    assert store.get_upload("d/1/x.png") == upload and store.get_upload("nope") is None
    assert store.uploaded_bytes("d/1") == 259 and store.uploaded_bytes("d/2") == 0


def test_clear_forgets_every_record(store):
    store.create(make_task("t"))
    store.put_image(ImageRecord("img", "p", 1, 0, 8, 8, 5000.0))
    store.put_upload(UploadRecord("d/x", b"1", "image/png", "acct", "cn-beijing", 9000.0, "d"))
    store.clear()
    assert store.counts() == {"tasks": 0, "images": 0, "uploads": 0, "upload_bytes": 0}
    assert store.get("t") is None and store.query(TaskQuery("acct", "cn-beijing"), 0, 5) == ([], 0)
    store.create(make_task("t"))  # and the id is free again
    assert store.get("t") is not None


# --- what the shared stores add ---------------------------------------------------------------------

def test_cells_change_atomically_and_a_failed_change_writes_nothing(shared_url):
    store = open_store(shared_url, TTL)
    try:
        assert store.read("n") is None
        assert store.change("n", lambda old: ((old or 0) + 1, "first")) == "first"
        assert store.change("n", lambda old: (old + 1, old)) == 1 and store.read("n") == 2

        def fails(old):
            raise ValueError("no")

        with pytest.raises(ValueError):
            store.change("n", fails)
        assert store.read("n") == 2
        store.change("bucket:a", lambda old: ({"x": [1.5, None]}, None))
        store.change("bucket:b", lambda old: (1, None))
        store.drop("bucket:")
        assert (store.read("bucket:a"), store.read("bucket:b"), store.read("n")) == (None, None, 2)
        with store.atomic("acct"), store.atomic("acct"), store.atomic():  # nestable
            store.change("n", lambda old: (old + 1, None))
        assert store.read("n") == 3
        store.change("n", lambda old: (None, None))
        assert store.read("n") is None
    finally:
        store.close()


def test_a_reopened_store_has_everything_and_its_secret(shared_url):
    first = open_store(shared_url, TTL)
    assert first.created
    first.create(make_task("t1"))
    first.put_image(ImageRecord("img", "p", 1, 0, 8, 8, 5000.0))
    first.put_upload(UploadRecord("d/x", b"data", "image/png", "acct", "cn-beijing", 9000.0, "d"))
    first.change("clock", lambda old: ([123.0, 0.0], None))
    secret = first.signing_secret()
    first.close()
    again = open_store(shared_url, TTL)
    try:
        assert not again.created
        assert again.get("t1") == make_task("t1") and again.get_image("img") is not None
        assert again.get_upload("d/x").data == b"data" and again.read("clock") == [123.0, 0.0]
        assert again.signing_secret() == secret
    finally:
        again.close()


def test_a_store_written_by_a_newer_version_is_refused(shared_url, tmp_path):
    open_store(shared_url, TTL).close()
    if shared_url.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "state.db") as db:
            db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
        db.close()
    else:
        store = open_store(shared_url, TTL)
        store._client.hset(store._k("meta"), "schema_version", SCHEMA_VERSION + 1)
        store.close()
    with pytest.raises(StoreVersionError, match="newer dashscope-mock"):
        open_store(shared_url, TTL)


def test_a_file_that_is_not_a_store_is_refused_clearly(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not a dashscope-mock store"):
        open_store(f"sqlite://{tmp_path}/junk.db", TTL)
    with pytest.raises(ValueError, match="use memory:"):
        open_store("postgres://x", TTL)


def test_sqlite_answers_every_page_from_an_index(tmp_path):
    store = SQLiteStore(tmp_path / "state.db", TTL)
    try:
        for query in (TaskQuery("a", "r"), TaskQuery("a", "r", status="RUNNING"), TaskQuery("a", "r", model="m"),
                      TaskQuery("a", "r", model="m", status="PENDING"), TaskQuery("a", "r", api_key_id="k"),
                      TaskQuery("a", "r", api_key_id="k", status="FAILED")):
            plan = " | ".join(store.query_plan(query))
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort: the index order is the page order
    finally:
        store.close()


# --- the fake on each backend --------------------------------------------------------------------

def fake_on(url: str, **config) -> tuple[FakeDashScope, AppClient]:
    config.setdefault("rate_limits", {"enabled": True, "scale": 1.0, "task_api_per_second": 1000})
    service = FakeDashScope(Config.load(store=url, **config))
    return service, AppClient(create_app(service=service))


@pytest.fixture
def two_workers(shared_url):
    """Two fakes on one shared store, as two workers are: their clients; closed after."""
    (first, a), (second, b) = fake_on(shared_url), fake_on(shared_url)
    yield a, b
    a.close(), b.close(), first.close(), second.close()


def test_the_fake_on_each_store_and_a_second_worker_sees_it_all(store_url):
    scenarios = [{"name": "once", "match": {"endpoint": "text2image"}, "effect": {"type": "reject", "error": "arrearage"}, "times": 1}]
    service, client = fake_on(store_url, scenarios=scenarios)
    other = None
    try:
        client.post("/__admin/clock/freeze")
        body = {"model": "qwen-image-plus", "input": {"prompt": "a cat"}}
        assert client.post(API + PATHS["text2image"], json=body, headers=auth(None, **ASYNC)).status_code == 400  # the scenario
        task_id = client.post(API + PATHS["text2image"], json=body, headers=auth(None, **ASYNC)).json()["output"]["task_id"]
        assert client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "PENDING"
        now = client.post("/__admin/clock/advance", json={"seconds": 60}).json()["now"]
        output = client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]
        assert output["task_status"] == "SUCCEEDED"
        url = output["results"][0]["url"]
        png = client.get(url)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        usage = client.get("/__admin/usage").json()["usage"]
        assert [(u["model"], u["images"]) for u in usage] == [("qwen-image-plus", 1)]
        assert [(s["applied"], s["remaining"]) for s in client.get("/__admin/scenarios").json()["scenarios"]] == [(1, 0)]
        if not store_url.startswith(("sqlite", "redis")):
            return
        # Another worker (or this one restarted) on the same store: the same fake.
        other_service, other = fake_on(store_url, scenarios=scenarios)
        assert other.get("/__admin/clock").json()["now"] == now
        assert other.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "SUCCEEDED"
        again = other.get(url)  # signed by the first, with the store's secret
        assert again.status_code == 200 and again.content == png.content
        assert [(s["applied"], s["remaining"]) for s in other.get("/__admin/scenarios").json()["scenarios"]] == [(1, 0)]
        assert other.get("/__admin/usage").json()["usage"] == usage
        # What one changes, the other sees: the clock, and a reset.
        other.post("/__admin/clock/advance", json={"seconds": 5})
        assert client.get("/__admin/clock").json()["now"] == now + 5
        client.post("/__admin/reset")
        assert other.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "UNKNOWN"
        assert [(s["applied"], s["remaining"]) for s in other.get("/__admin/scenarios").json()["scenarios"]] == [(0, 1)]
        assert other.get("/__admin/clock").json()["frozen"] is False
        other_service.close()
    finally:
        if other is not None:
            other.close()
        client.close()
        service.close()


def test_rate_limits_and_free_tier_are_per_account_across_workers(two_workers):
    a, b = two_workers
    a.post("/__admin/clock/freeze")
    body = {"model": "qwen-image-max", "input": {"messages": [{"role": "user", "content": [{"text": "a"}]}]}}
    path = API + PATHS["multimodal-generation"]
    codes = [c.post(path, json=body, headers=auth()).status_code for c in (a, b, a, b)]
    assert codes == [200, 200, 429, 429]  # 2 per minute, for the account, wherever it calls
    assert b.post(path, json=body, headers=auth(demo_key("b"))).status_code == 200
    b.post("/__admin/usage/free-tier-only", json={"account": "demo-account-a", "enabled": True})
    assert a.get("/__admin/usage").json()["free_tier_only"] == ["demo-account-a"]


def test_a_locked_sqlite_store_answers_503_in_the_envelope_then_recovers(tmp_path):
    service, client = fake_on(f"sqlite://{tmp_path}/state.db")
    service.shared._db.execute("PRAGMA busy_timeout = 100")  # not the 5 s a real wait may take
    blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        body = {"model": "qwen-image-plus", "input": {"prompt": "a cat"}}
        answer = client.post(API + PATHS["text2image"], json=body, headers=auth(None, **ASYNC))
        assert answer.status_code == 503
        assert answer.json() == {"request_id": answer.json()["request_id"], "code": UNAVAILABLE_CODE, "message": UNAVAILABLE_MESSAGE}
        blocker.execute("ROLLBACK")
        assert client.post(API + PATHS["text2image"], json=body, headers=auth(None, **ASYNC)).status_code == 200
    finally:
        blocker.close()
        client.close()
        service.close()


def test_the_503_is_the_catalogs_service_unavailable():
    from dashscope_schemas import load_catalog

    wire = load_catalog().error("service_unavailable")
    assert (wire["status"], wire["code"], wire["message"]) == (503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE)


def test_redis_restart_answers_503_then_recovers_with_everything(tmp_path):
    directory = tmp_path / "redis"
    directory.mkdir()
    body = {"model": "qwen-image-plus", "input": {"prompt": "a cat"}}
    with redis_server(directory) as port:
        service, client = fake_on(f"redis://127.0.0.1:{port}/0")
        client.post("/__admin/clock/freeze")
        task_id = client.post(API + PATHS["text2image"], json=body, headers=auth(None, **ASYNC)).json()["output"]["task_id"]
        now = client.get("/__admin/clock").json()["now"]
    try:
        # The server is gone: answers are 503 in the envelope, at once (no hang), never a 500.
        started = time.monotonic()
        for answer in (client.get(f"{API}/tasks/{task_id}", headers=auth()),
                       client.post(API + PATHS["text2image"], json=body, headers=auth(None, **ASYNC)),
                       client.get("/__admin/scenarios")):
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == UNAVAILABLE_CODE and set(answer.json()) == {"request_id", "code", "message"}
        assert time.monotonic() - started < 10
        assert client.get("/__admin/clock").json()["now"] == now  # as last read: nobody can move it meanwhile
        with redis_server(directory, port):  # back, on the same files: everything acknowledged is there
            output = client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]
            assert output["task_id"] == task_id and output["task_status"] == "PENDING"
            assert client.get("/__admin/clock").json()["now"] == now
    finally:
        client.close()
        service.close()


def test_concurrent_task_limits_count_every_workers_tasks(two_workers):
    a, b = two_workers
    a.post("/__admin/clock/freeze")
    body = {"model": "qwen-image-plus", "input": {"prompt": "a cat"}}  # 2 a second, 2 at a time
    path = API + PATHS["text2image"]
    assert [c.post(path, json=body, headers=auth(None, **ASYNC)).status_code for c in (a, b)] == [200, 200]
    a.post("/__admin/clock/advance", json={"seconds": 1})  # the bucket is full again; both tasks still run
    assert b.post(path, json=body, headers=auth(None, **ASYNC)).json()["code"] == "Throttling.RateQuota"
    b.post("/__admin/clock/advance", json={"seconds": 60})  # both finished
    assert a.post(path, json=body, headers=auth(None, **ASYNC)).status_code == 200


def test_redis_never_writes_a_status_back_over_a_later_one(request, tmp_path):
    # The sweep of one server and a poll on another may both observe a task; whichever writes
    # last, the task does not go back from SUCCEEDED to RUNNING.
    store = open_store(url_of("redis", request, tmp_path), TTL)
    try:
        task = make_task("t", at=0)
        store.create(task)
        running, finished = domain.observe(task, 5), domain.observe(task, 100)
        store.update(finished)
        store.update(running)  # late
        assert store.get("t") == finished
        assert store.query(TaskQuery("acct", "cn-beijing", status=domain.SUCCEEDED))[1] == 1
    finally:
        store.close()


def test_a_start_that_fails_leaves_the_config_scenarios_for_the_next_one(tmp_path):
    """A first start on a new store that fails (a keys file that is not there) must not leave the
    store marked as having the config's scenarios; the next, good start loads them, once."""
    from mock_server.config import Config
    from mock_server.service import FakeDashScope

    store = f"sqlite://{tmp_path}/state.db"
    scenario = {"name": "from-config", "effect": {"type": "unavailable"}, "times": 1}
    with pytest.raises(OSError):
        FakeDashScope(Config.load(store=store, scenarios=[scenario], keys_file=str(tmp_path / "missing.json")))
    for _ in range(2):  # and a restart does not load them again
        service = FakeDashScope(Config.load(store=store, scenarios=[scenario]))
        assert [s.name for s in service.scenarios.all()] == ["from-config"]
        service.close()
