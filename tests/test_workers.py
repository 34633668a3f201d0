"""serve --store and --workers, through the CLI: several workers on one SQLite file are one fake
(tasks, a times-limited scenario, a rate limit, the clock); kill -9 under load loses nothing that
was answered; two servers on one Redis share tasks and the clock; and the refusals."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from helpers import ASYNC, PATHS, REPO, auth, demo_key, stop
from redis_helpers import redis_server

from mock_server.stores import SCHEMA_VERSION

API = "/cn-beijing/api/v1"
T2I = {"model": "qwen-image-plus", "input": {"prompt": "a cat"}}
MAX = {"model": "qwen-image-max", "input": {"messages": [{"role": "user", "content": [{"text": "a"}]}]}}
SERVE = [sys.executable, "-m", "mock_server.cli", "serve", "--port", "0"]


@contextlib.contextmanager
def served(arguments: list[str], workdir: Path, name: str = "fake") -> Iterator[tuple[subprocess.Popen, str]]:
    """serve ... --ready-file; (the process, its URL) once the file says it answers; stopped after."""
    ready, log_path = workdir / f"{name}.url", workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*SERVE, "--ready-file", str(ready), *arguments], cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            waiting = threading.Event()
            for _ in range(600):  # at most 30 s: the workers import everything first
                if process.poll() is not None:
                    pytest.fail(f"serve exited with {process.returncode}: {log_path.read_text(errors='replace')[-3000:]}")
                if ready.exists():
                    break
                waiting.wait(0.05)
            else:
                pytest.fail(f"no ready file in 30 s: {log_path.read_text(errors='replace')[-3000:]}")
            yield process, ready.read_text().strip()
        finally:
            stop(process, grace=20)


def fresh(url: str) -> httpx.Client:
    """A new connection for every request: the kernel hands each to whichever worker accepts."""
    return httpx.Client(base_url=url, timeout=15, limits=httpx.Limits(max_keepalive_connections=0))


def scenario_counts(client: httpx.Client) -> list[tuple[str, int, int | None]]:
    return [(s.get("name"), s["applied"], s["remaining"]) for s in client.get("/__admin/scenarios").json()["scenarios"]]


def test_two_workers_on_sqlite_are_one_fake(tmp_path):
    # Limits x30 on a frozen clock: qwen-image-plus's bucket holds exactly the 60 calls below, and
    # qwen-image-max allows 60 a minute (2 x 30): one bucket each for the account, in the store.
    serve = ["--store", f"sqlite://{tmp_path}/state.db", "--workers", "2", "--rate-limit-scale", "30"]
    with served(serve, tmp_path) as (_, url), fresh(url) as client:
        with ThreadPoolExecutor(8) as pool:
            pids = set(pool.map(lambda _: client.get("/__admin/health").json()["pid"], range(200)))
        assert len(pids) == 2, "both workers answer"
        client.post("/__admin/clock/freeze")
        client.post("/__admin/scenarios", json={"name": "thrice", "match": {"endpoint": "text2image"},
                                                "effect": {"type": "reject", "error": "arrearage"}, "times": 3})

        def submit_and_poll(_: int) -> tuple[str, str]:
            answer = client.post(API + PATHS["text2image"], json=T2I, headers=auth(None, **ASYNC))
            if answer.status_code != 200:
                return "refused", answer.json()["code"]
            task_id = answer.json()["output"]["task_id"]
            # Polled at once, on a new connection: maybe the other worker; it knows the task.
            polled = client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]
            return polled["task_status"], task_id

        with ThreadPoolExecutor(6) as pool:  # 6 clients x 10 tasks
            results = list(pool.map(submit_and_poll, range(60)))
        assert Counter(status for status, _ in results) == {"PENDING": 57, "refused": 3}
        assert {code for status, code in results if status == "refused"} == {"Arrearage"}
        created = [task_id for status, task_id in results if status == "PENDING"]
        assert len(set(created)) == 57  # none lost, none twice
        assert client.get("/__admin/tasks", params={"limit": 500}).json()["total"] == 57
        assert scenario_counts(client) == [("thrice", 3, 0)]
        assert client.post(API + PATHS["text2image"], json=T2I, headers=auth(None, **ASYNC)).json()["code"] == "Throttling.RateQuota"
        # qwen-image-max: 2 (x30) a minute for the account, whichever worker takes the call.
        with ThreadPoolExecutor(6) as pool:
            codes = Counter(pool.map(lambda _: client.post(API + PATHS["multimodal-generation"], json=MAX, headers=auth()).status_code,
                                     range(64)))
        assert codes == {200: 60, 429: 4}
        # One clock: advanced through one worker, the same on every answer.
        now = client.post("/__admin/clock/advance", json={"seconds": 30}).json()["now"]
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda _: client.get("/__admin/clock").json()["now"], range(20))) == {now}
            statuses = set(pool.map(lambda t: client.get(f"{API}/tasks/{t}", headers=auth()).json()["output"]["task_status"], created))
        assert statuses == {"SUCCEEDED"}
        # A reset is for all: no worker keeps a task.
        client.post("/__admin/reset")
        with ThreadPoolExecutor(4) as pool:
            after = set(pool.map(lambda t: client.get(f"{API}/tasks/{t}", headers=auth()).json()["output"]["task_status"], created[:20]))
        assert after == {"UNKNOWN"}


def test_kill_9_under_load_then_restart_loses_nothing_acknowledged(tmp_path):
    store = ["--store", f"sqlite://{tmp_path}/state.db", "--rate-limit-scale", "1000"]
    with served(store, tmp_path, "before") as (process, url), fresh(url) as client:
        client.post("/__admin/scenarios", json={"name": "twice", "match": {"endpoint": "text2image", "prompt_contains": "dog"},
                                                "effect": {"type": "reject", "error": "arrearage"}, "times": 2})
        dog = {"model": "qwen-image-plus", "input": {"prompt": "a dog"}}
        assert client.post(API + PATHS["text2image"], json=dog, headers=auth(None, **ASYNC)).status_code == 400
        task_id = client.post(API + PATHS["text2image"], json=T2I, headers=auth(None, **ASYNC)).json()["output"]["task_id"]
        clock = client.post("/__admin/clock/advance", json={"seconds": 3600}).json()
        image_url = client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["results"][0]["url"]
        image = client.get(image_url)
        assert image.status_code == 200
        acknowledged: list[str] = []
        hundred = threading.Event()

        def load() -> None:
            while True:
                try:
                    answer = client.post(API + PATHS["text2image"], json=T2I, headers=auth(demo_key("b"), **ASYNC))
                except httpx.TransportError:
                    return  # killed
                if answer.status_code == 200:
                    acknowledged.append(answer.json()["output"]["task_id"])
                    if len(acknowledged) >= 100:
                        hundred.set()

        clients = [threading.Thread(target=load) for _ in range(4)]
        for thread in clients:
            thread.start()
        assert hundred.wait(60)
        process.kill()  # SIGKILL, mid-load: requests in flight
        process.wait(10)
        for thread in clients:
            thread.join(30)
        answered = list(acknowledged)
    assert len(answered) >= 100
    with served(store, tmp_path, "after") as (_, url), fresh(url) as client:
        assert client.get("/__admin/clock").json() == clock
        assert scenario_counts(client) == [("twice", 1, 1)]
        again = client.get(image_url.replace(image_url.split("/")[2], url.split("/")[2]))
        assert again.status_code == 200 and again.content == image.content  # signed before the crash, still good
        with ThreadPoolExecutor(4) as pool:
            outputs = list(pool.map(lambda t: client.get(f"{API}/tasks/{t}", headers=auth(demo_key("b"))).json()["output"], answered))
        assert [o["task_id"] for o in outputs] == answered
        assert {o["task_status"] for o in outputs} == {"PENDING"}  # the clock stands still: none lost, none UNKNOWN


def test_two_servers_on_one_redis_share_tasks_scenarios_and_the_clock(tmp_path):
    with redis_server(tmp_path) as port:
        store = ["--store", f"redis://127.0.0.1:{port}/0"]
        with served(store, tmp_path, "a") as (_, a_url), served(store, tmp_path, "b") as (_, b_url), \
                fresh(a_url) as a, fresh(b_url) as b:
            a.post("/__admin/clock/freeze")
            task_id = a.post(API + PATHS["text2image"], json=T2I, headers=auth(None, **ASYNC)).json()["output"]["task_id"]
            assert b.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "PENDING"
            now = b.post("/__admin/clock/advance", json={"seconds": 60}).json()["now"]
            assert a.get("/__admin/clock").json()["now"] == now
            assert a.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["task_status"] == "SUCCEEDED"
            b.post("/__admin/scenarios", json={"effect": {"type": "reject", "error": "arrearage"}, "times": 1,
                                               "match": {"endpoint": "text2image"}})
            codes = sorted(c.post(API + PATHS["text2image"], json=T2I, headers=auth(None, **ASYNC)).status_code for c in (a, b))
            assert codes == [200, 400]  # once, across servers
            # qwen-image-max: 2 a minute for the account, on whichever server.
            assert [c.post(API + PATHS["multimodal-generation"], json=MAX, headers=auth()).status_code for c in (a, b, a, b)] \
                == [200, 200, 429, 429]


def test_serve_refuses_workers_without_a_shared_store_and_unknown_or_newer_stores(tmp_path):
    def serve(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([*SERVE, *arguments], cwd=REPO, capture_output=True, text=True, timeout=60)

    refused = serve("--workers", "2")
    assert refused.returncode == 2 and "needs a store the workers share" in refused.stderr
    assert serve("--store", "postgres://x").returncode == 2
    import sqlite3

    from mock_server.stores import open_store

    open_store(f"sqlite://{tmp_path}/state.db", 86400).close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.close()
    newer = serve("--store", f"sqlite://{tmp_path}/state.db")
    assert newer.returncode == 2 and "newer dashscope-mock" in newer.stderr


def test_a_store_password_is_never_printed_and_a_bad_option_is_one_line():
    from helpers import free_port

    def serve(store: str) -> subprocess.CompletedProcess:
        return subprocess.run([*SERVE, "--store", store], cwd=REPO, capture_output=True, text=True, timeout=60)

    closed = free_port()  # nothing listens there
    refused = serve(f"redis://:hunter2secret@127.0.0.1:{closed}/0")
    assert refused.returncode == 2 and "hunter2secret" not in refused.stdout + refused.stderr
    assert ":***@" in refused.stderr
    unknown = serve(f"redis://127.0.0.1:{closed}/0?no_such_option=1")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr and "no_such_option" in unknown.stderr


def test_a_worker_that_dies_is_replaced_and_the_fake_goes_on(tmp_path):
    import os
    import signal

    with served(["--store", f"sqlite://{tmp_path}/state.db", "--workers", "2"], tmp_path) as (_, url):
        pids: set[int] = set()
        for _ in range(200):
            with fresh(url) as client:
                pids.add(client.get("/__admin/health").json()["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, pids
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        waiting, seen = threading.Event(), set()
        for _ in range(600):  # the supervisor starts another (at most 30 s, while it imports)
            with fresh(url) as client, contextlib.suppress(httpx.TransportError):
                seen.add(client.get("/__admin/health").json()["pid"])
            if seen - pids:
                break
            waiting.wait(0.05)
        assert seen - pids and victim not in seen
        log = (tmp_path / "fake.log").read_text(errors="replace")
        assert f"worker {victim} exited" in log
