"""Benchmarks of the fake: does a task lookup stay O(1) as the store grows, and does the
request path avoid reloading schemas? Ratios within one run, so the machine's speed cancels.

    .venv/bin/python bench/bench_fake.py            # prints a table; exits 1 if a ratio is off
"""

from __future__ import annotations

import asyncio
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


def _fill(service: FakeDashScope, count: int) -> str:
    """count tasks of account a in Beijing, made directly in the store; returns one id."""
    template = domain.Task(task_id="", account="demo-account-a", region="cn-beijing", api_key_id="key-a-bj-1",
                           model="qwen-image-plus", endpoint="text2image", orig_prompt="p", actual_prompt="p", seed=1,
                           width=1328, height=1328, timing=domain.Timing("time", 1, 15), outcomes=(domain.ImageOutcome("i"),))
    now = service.clock.now()
    for i in range(count):
        service.store.create(domain.create(replace(template, task_id=f"task-{i}"), now))
    return f"task-{count // 2}"


async def _interleaved(apps_and_paths, rounds: int) -> list[float]:
    """Median latency of each (app, path), measured in alternation so that whatever else the
    machine does falls on every store alike."""
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") for app, _ in apps_and_paths]
    samples: list[list[float]] = [[] for _ in apps_and_paths]
    try:
        for round_no in range(rounds + 20):
            for index, (client, (_, path)) in enumerate(zip(clients, apps_and_paths)):
                start = time.perf_counter()
                response = await client.get(path, headers=HEADERS)
                elapsed = time.perf_counter() - start
                assert response.status_code == 200, response.text
                if round_no >= 20:  # the first rounds warm up
                    samples[index].append(elapsed)
    finally:
        for client in clients:
            await client.aclose()
    return [statistics.median(s) for s in samples]


def bench_lookup(small: int = 100, large: int = 50_000, rounds: int = 1000) -> tuple[float, float]:
    apps = []
    for count in (small, large):
        service = FakeDashScope(Config.load(rate_limits={"enabled": False}), clock=ControllableClock())
        task_id = _fill(service, count)
        apps.append((create_app(service=service), f"/cn-beijing/api/v1/tasks/{task_id}"))
    small_time, large_time = asyncio.run(_interleaved(apps, rounds))
    return small_time, large_time


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
    small, large = bench_lookup()
    warm, cold = bench_check_request()
    lookup_ratio = large / small
    print(f"GET /tasks/{{id}} median: {small * 1e6:8.1f} us with 100 tasks, {large * 1e6:8.1f} us with 50,000"
          f"  -> ratio {lookup_ratio:.2f} (O(1) means about 1)")
    print(f"check_request: {warm * 1e6:8.1f} us warm, {cold * 1e6:8.1f} us when schemas are reloaded"
          f"  -> warm/cold {warm / cold:.3f} (the request path never reloads)")
    ok = lookup_ratio < 1.5 and warm / cold < 0.5
    print("OK" if ok else "OUT OF BOUNDS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
