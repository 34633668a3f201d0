"""Benchmarks of the fake: do a task lookup, a task list and a create with rate limits on stay
as fast with 50,000 stored tasks as with 100, does the housekeeping sweep leave the event loop
free, and does the request path avoid reloading schemas? Ratios within one run, so the
machine's speed cancels.

    .venv/bin/python bench/bench_fake.py            # prints a table; exits 1 if a ratio is off
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from dataclasses import replace

import dashscope_schemas as ds
import httpx

from mock_server.app import create_app
from mock_server.clock import ControllableClock
from mock_server.config import Config
from mock_server.domain import tasks as domain
from mock_server.service import FakeDashScope

KEY = "sk-demoabj1-0000000000000000"
HEADERS = {"Authorization": f"Bearer {KEY}"}
ASYNC = {"X-DashScope-Async": "enable"}


def _fill(service: FakeDashScope, count: int) -> str:
    """count tasks of account a in Beijing, made directly in the store; returns one id."""
    template = domain.Task(task_id="", account="demo-account-a", region="cn-beijing", api_key_id="key-a-bj-1",
                           model="qwen-image-plus", endpoint="text2image", orig_prompt="p", prompt_extend=False, seed=1,
                           width=1328, height=1328, timing=domain.Timing("time", 1, 15), outcomes=(domain.ImageOutcome("i"),))
    now = service.clock.advance(0)  # frozen: no task changes status while the benchmark runs
    for i in range(count):
        service.store.create(domain.create(replace(template, task_id=f"task-{i}"), now))
    return f"task-{count // 2}"


async def _interleaved(apps_and_requests, rounds: int) -> list[float]:
    """Median latency of each (app, (method, path, body)), measured in alternation so that
    whatever else the machine does falls on every store alike."""
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") for app, _ in apps_and_requests]
    samples: list[list[float]] = [[] for _ in apps_and_requests]
    try:
        for round_no in range(rounds + 20):
            for index, (client, (_, (method, path, body))) in enumerate(zip(clients, apps_and_requests, strict=True)):
                start = time.perf_counter()
                response = await client.request(method, path, headers={**HEADERS, **ASYNC} if body else HEADERS, json=body)
                elapsed = time.perf_counter() - start
                assert response.status_code == 200, response.text
                if round_no >= 20:  # the first rounds warm up
                    samples[index].append(elapsed)
    finally:
        for client in clients:
            await client.aclose()
    return [statistics.median(s) for s in samples]


def _service(**rate_limits) -> FakeDashScope:
    return FakeDashScope(Config.load(rate_limits=rate_limits or {"enabled": False}), clock=ControllableClock())


def bench_by_store_size(request, small: int = 100, large: int = 50_000, rounds: int = 1000, **rate_limits) -> tuple[float, float]:
    """Median latency of `request(task_id)` against a store of `small` and of `large` tasks."""
    apps = []
    for count in (small, large):
        service = _service(**rate_limits)
        task_id = _fill(service, count)
        apps.append((create_app(service=service), request(task_id)))
    small_time, large_time = asyncio.run(_interleaved(apps, rounds))
    return small_time, large_time


def _lookup(task_id: str):
    return ("GET", f"/cn-beijing/api/v1/tasks/{task_id}", None)


def _list(_: str):
    return ("GET", "/cn-beijing/api/v1/tasks?page_size=10&status=PENDING&model_name=qwen-image-plus", None)


def _create(_: str):
    # Limits on (the default of serve), scaled so none refuses: what is measured is the admission
    # check itself, which counts the account's running tasks of the model.
    return ("POST", "/cn-beijing/api/v1/services/aigc/text2image/image-synthesis",
            {"model": "qwen-image-plus", "input": {"prompt": "a cat"}})


def bench_sweep(count: int = 50_000) -> tuple[float, float]:
    """(longest single batch, whole sweep) in seconds, freeing `count` expired tasks and their
    result images: the longest batch is the most the event loop is held at once."""
    from mock_server import housekeeping

    service = _service()
    _fill(service, count)
    service.clock.advance(3 * 86400)
    batches: list[float] = []
    real_sweep = service.sweep

    def timed(limit: int) -> int:
        start = time.perf_counter()
        done = real_sweep(limit)
        batches.append(time.perf_counter() - start)
        return done

    service.sweep = timed  # type: ignore[method-assign]
    # The collector's own pauses (tens of ms on a heap this size, whenever it runs, sweep or not)
    # are the runtime's: measured here is what the sweep itself holds the loop for.
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    try:
        asyncio.run(housekeeping.sweep_all(service))
    finally:
        gc.enable()
    return max(batches), time.perf_counter() - start


def bench_check_request(rounds: int = 2000) -> tuple[float, float]:
    """A cached check_request against a cold schema load + compile, per call."""
    catalog = ds.load_catalog()
    body = {"model": "qwen-image-edit-plus", "parameters": {"n": 2, "size": "1024*1024"},
            "input": {"messages": [{"role": "user", "content": [{"image": "https://e.com/a.png"}, {"text": "a"}]}]}}
    catalog.check_request("multimodal-generation", body, {})
    start = time.perf_counter()
    for _ in range(rounds):
        catalog.check_request("multimodal-generation", body, {})
    warm = (time.perf_counter() - start) / rounds
    start = time.perf_counter()
    for _ in range(20):
        ds.validation.validator_for.cache_clear()
        ds._loader._bundled.cache_clear()
        catalog.check_request("multimodal-generation", body, {})
    cold = (time.perf_counter() - start) / 20
    return warm, cold


def main() -> int:
    results = []
    for label, request, limits in (("GET /tasks/{id}", _lookup, {}), ("GET /tasks?status&model", _list, {}),
                                   ("POST create, limits on", _create, {"enabled": True, "scale": 1e6, "task_api_per_second": 10**6})):
        small, large = bench_by_store_size(request, rounds=600, **limits)
        results.append(large / small)
        print(f"{label:<26} median: {small * 1e6:8.1f} us with 100 tasks, {large * 1e6:8.1f} us with 50,000"
              f"  -> ratio {large / small:.2f} (no growth means about 1)")
    longest, whole = bench_sweep()
    print(f"sweep of 50,000 expired tasks: {whole * 1e3:8.1f} ms in all, the loop held at most {longest * 1e3:.1f} ms at once"
          f"  -> share {longest / whole:.3f}")
    warm, cold = bench_check_request()
    print(f"check_request: {warm * 1e6:8.1f} us warm, {cold * 1e6:8.1f} us when schemas are reloaded"
          f"  -> warm/cold {warm / cold:.3f} (the request path never reloads)")
    ok = max(results) < 1.5 and warm / cold < 0.5 and longest / whole < 0.2
    print("OK" if ok else "OUT OF BOUNDS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
