"""Memory per stored task, and what a poll and a list cost with 100 vs 1,000,000 stored tasks.

    .venv/bin/python bench/bench_memory.py [--rounds 3] [--seconds 2] [--tasks 200000] [--large 1000000] [--where]

Bytes per task: resident memory (/proc/self/statm) before and after storing N tasks, in a fresh
process each time, two ways:
  store  tasks made directly in the store, as bench_fake._fill makes them (ids task-N, one prompt);
  api    tasks created and polled through the service's own verbs, no HTTP: what one POST + GET
         cycle of `serve --fast` leaves (the task with its uuid ids, and its result-image record).
--where adds tracemalloc's view of the api way: bytes per task and the lines that allocate them.

Latency: two fakes served the way `serve` serves them (uvicorn on uvloop, the httptools protocol
with the head deadline, access log off, rate limits off), one holding 100 tasks and one 1,000,000 (made as
bench_fake._fill makes them; the clock is frozen, so they stay PENDING), pinned to core 1; wrk
with one connection on core 0, the two fakes in alternation; medians over the rounds of wrk's
p50 and p99. Figures, not tests: other work on the machine shows up in them.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import subprocess
import sys
import time

from harness import BENCH, KEY, PREFIX, PYTHON, ROOT, Goal, Server, free_port, pinned, require_wrk, rss_bytes, wrk

LIST_QUERY = "page_size=10&status=PENDING&model_name=qwen-image-plus"
POLL, LIST = "poll  GET /tasks/{id}", "list  GET /tasks?page_size=10&status&model_name"
CREATE_BODY = json.dumps({"model": "qwen-image-plus", "input": {"prompt": "a cat"}, "parameters": {"n": 1}}).encode()


# --- in the child processes -------------------------------------------------------------------

def _store_service():
    from bench_fake import _service
    return _service()


def _fill_store(service, count: int) -> None:
    from bench_fake import _fill
    _fill(service, count)


def _api_service():
    from mock_server.clock import ControllableClock
    from mock_server.config import Config
    from mock_server.service import FakeDashScope
    return FakeDashScope(Config.load(rate_limits={"enabled": False}).with_fast_tasks(), clock=ControllableClock())


def _fill_api(service, count: int) -> None:
    """count create + first-poll cycles through the verbs the HTTP layer calls."""
    from mock_server.backend.calls import Call

    headers = {"authorization": f"Bearer {KEY}", "x-dashscope-async": "enable", "content-type": "application/json"}
    for _ in range(count):
        outcome = service.generation.submit("text2image", Call(region="cn-beijing", headers=headers, body=CREATE_BODY))
        polled = service.tasks.query(Call(region="cn-beijing", headers=headers), outcome.value.task_id)
        assert polled.value is not None and polled.value.status == "SUCCEEDED", polled


def child_rss(kind: str, count: int) -> None:
    service = _store_service() if kind == "store" else _api_service()
    fill = _fill_store if kind == "store" else _fill_api
    if kind == "api":
        _fill_api(service, 1000)  # schemas loaded and compiled, caches warm: not per-task memory
    gc.collect()
    before, start = rss_bytes(), time.perf_counter()
    fill(service, count)
    seconds = time.perf_counter() - start
    gc.collect()
    print(json.dumps({"bytes_per_task": (rss_bytes() - before) / count, "seconds": seconds}))


def child_trace(count: int) -> None:
    import tracemalloc

    service = _api_service()
    _fill_api(service, 1000)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    _fill_api(service, count)
    gc.collect()
    after = tracemalloc.take_snapshot()
    stats = after.compare_to(before, "lineno")
    top = [{"where": re.sub(r".*/(site-packages|python3\.\d+)/", "", str(stat.traceback[0])), "bytes": stat.size_diff / count}
           for stat in stats[:10]]
    print(json.dumps({"bytes_per_task": sum(s.size_diff for s in stats) / count, "top": top}))


def child_serve(count: int, port: int) -> None:
    """A fake holding `count` tasks, on uvicorn as mock_server.cli's serve runs it."""
    import uvicorn

    from mock_server.app import create_app
    from mock_server.transport import event_loop, protocol_with_head_timeout

    service = _store_service()
    _fill_store(service, count)
    gc.collect()
    config = uvicorn.Config(create_app(service=service), host="127.0.0.1", port=port, log_level="info", access_log=False,
                            loop=event_loop(), http=protocol_with_head_timeout(service.config.read_timeout))
    uvicorn.Server(config).run()


# --- in the parent ----------------------------------------------------------------------------

def _child(*args: str) -> dict:
    done = subprocess.run(pinned(0, [PYTHON, str(BENCH / "bench_memory.py"), *args]), cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"bench_memory {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def measure(rounds: int = 3, seconds: float = 2.0, tasks: int = 200_000, small: int = 100, large: int = 1_000_000,
            where: bool = False) -> list[Goal]:
    require_wrk()
    started = time.perf_counter()
    servers = {}
    for count in (small, large):
        port = free_port()
        servers[count] = Server(f"fake-{count}-tasks", [PYTHON, str(BENCH / "bench_memory.py"), "--child-serve", str(count), str(port)],
                                port, start_timeout=900)
    for server in servers.values():
        server.start()  # they fill their stores on core 1 while the memory is measured on core 0
    try:
        print(f"\nMemory per stored task (resident memory growth over {tasks:,} tasks, a fresh process each):")
        per_task = {}
        for kind, label in (("store", "made in the store as bench_fake._fill does"),
                            ("api", "created + polled through the service (task + image)")):
            figures = _child("--child-rss", kind, str(tasks))
            per_task[kind] = figures["bytes_per_task"]
            print(f"  {kind:<6} {label:<52} {figures['bytes_per_task']:>7,.0f} B/task   ({figures['seconds']:.1f} s to store)")
        if where:
            traced = _child("--child-trace", str(tasks // 10))
            print(f"  tracemalloc, api way, {tasks // 10:,} tasks: {traced['bytes_per_task']:,.0f} B/task of Python objects; by line:")
            for entry in traced["top"]:
                print(f"      {entry['bytes']:>7,.0f} B  {entry['where']}")
        for server in servers.values():
            server.wait()
        assert all(server.process is not None for server in servers.values())
        rss = {count: rss_bytes(server.process.pid) for count, server in servers.items()}  # type: ignore[union-attr]
        print(f"  served fakes: {rss[small] / 2**20:,.0f} MiB with {small:,} tasks, {rss[large] / 2**20:,.0f} MiB with {large:,}"
              f"  -> {(rss[large] - rss[small]) / (large - small):,.0f} B/task")

        requests = {POLL: lambda count: f"{PREFIX}/tasks/task-{count // 2}", LIST: lambda count: f"{PREFIX}/tasks?{LIST_QUERY}"}
        samples: dict[tuple[str, int], list] = {(name, count): [] for name in requests for count in servers}
        for name, path in requests.items():  # warm-up, and a check that each answers 200
            for count, server in servers.items():
                result = wrk(server.url + path(count), 1, 1, headers=[f"Authorization: Bearer {KEY}"], latency=True)
                if result.errors:
                    raise RuntimeError(f"{name} on the fake with {count} tasks: {result.errors} errors\n{result.output}")
        for _ in range(rounds):
            for name, path in requests.items():
                for count, server in servers.items():
                    samples[name, count].append(wrk(server.url + path(count), seconds, 1,
                                                    headers=[f"Authorization: Bearer {KEY}"], latency=True))
    finally:
        for server in servers.values():
            server.stop()

    print(f"\nLatency with {small:,} vs {large:,} stored tasks (wrk, 1 connection, {rounds} x {seconds:g} s interleaved; medians):")
    print(f"  {'request':<50} {'p50 ' + str(small):>12} {'p50 ' + format(large, ','):>14} {'ratio':>6}"
          f" {'p99 ' + str(small):>12} {'p99 ' + format(large, ','):>14} {'ratio':>6}")
    ratios = {}
    for name in requests:
        p50 = {count: statistics.median(r.p50 for r in samples[name, count]) for count in servers}
        p99 = {count: statistics.median(r.p99 for r in samples[name, count]) for count in servers}
        ratios[name] = p50[large] / p50[small]
        print(f"  {name:<50} {_us(p50[small]):>12} {_us(p50[large]):>14} {ratios[name]:>6.2f}"
              f" {_us(p99[small]):>12} {_us(p99[large]):>14} {p99[large] / p99[small]:>6.2f}")
    print(f"  ({time.perf_counter() - started:.0f} s in all)")
    return [
        Goal(f"poll p50 at {large:,} tasks / at {small:,}", ratios[POLL], 1.2, at_least=False),
        Goal(f"list p50 at {large:,} tasks / at {small:,} (same bound)", ratios[LIST], 1.2, at_least=False),
        Goal("resident bytes per stored task, store way (bench_fake._fill)", per_task["store"], 1024, at_least=False, unit=" B"),
        Goal("resident bytes per stored task, api way (task + image)", per_task["api"], 1024, at_least=False, unit=" B"),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=200_000, help="tasks stored to measure bytes per task (default 200,000)")
    parser.add_argument("--large", type=int, default=1_000_000, help="the large store of the latency comparison (default 1,000,000)")
    parser.add_argument("--where", action="store_true", help="also show tracemalloc's bytes per task and the lines allocating them")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        mode, *args = sys.argv[1:]
        {"--child-rss": lambda: child_rss(args[0], int(args[1])), "--child-trace": lambda: child_trace(int(args[0])),
         "--child-serve": lambda: child_serve(int(args[0]), int(args[1]))}[mode]()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of each wrk run (default 2)")
    add_arguments(parser)
    args = parser.parse_args()
    goals = measure(args.rounds, args.seconds, args.tasks, large=args.large, where=args.where)
    print("\nGoals:")
    for goal in goals:
        print(goal.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
