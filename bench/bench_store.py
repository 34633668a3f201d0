"""Throughput of the fake on each store, and of 2 workers against 1: figures, never assertions.

    .venv/bin/python bench/bench_store.py [--rounds 3] [--seconds 5] [--connections 32]

The create + poll cycle of bench/load.lua (wrk, 1 thread, pinned to core 0) against
`dashscope-mock serve --fast --no-rate-limits --store ...` on every other core, in interleaved
rounds: memory:, sqlite: with 1 and 2 workers, and redis: (a redis-server of its own on a free
loopback port, appendonly with fsync every second, its files in a temp dir) with 1 and 2 workers.
Prints requests per second and the ratios that say what a store costs (sqlite and redis against
memory) and what a second worker buys (2 workers against 1). On a 2-core machine the server side
has one core: a second worker then shares it, and its figure is the cost of sharing, not a gain.
Exits 0 whatever the figures; 2 without wrk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import CLIENT_CORE, PYTHON, Server, drift_note, free_port, interleaved_rounds, require_wrk, wait_port


def server_cores() -> list[int]:
    """Every core but the load generator's (all of them on a 1-core machine)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return [core for core in cores if core != CLIENT_CORE] or cores


class StoreServer(Server):
    """A fake pinned to the server cores (not one core: the workers may use them all)."""

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        command = self.command
        if shutil.which("taskset") and len(server_cores()) < (os.cpu_count() or 1):
            command = ["taskset", "-c", ",".join(map(str, server_cores())), *command]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def fake(name: str, store: str, workers: int) -> StoreServer:
    port = free_port()
    command = [str(Path(PYTHON).parent / "dashscope-mock"), "serve", "--fast", "--no-rate-limits", "--host", "127.0.0.1",
               "--port", str(port), "--store", store, "--workers", str(workers)]
    return StoreServer(name, command, port)


def start_redis(directory: str) -> tuple[subprocess.Popen, int] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("bench: redis-server is not installed (apt-get install -y redis-server): redis left out")
        return None
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "",
                                "--appendonly", "yes", "--appendfsync", "everysec"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    wait_port(port, process, 10, Path(directory) / "redis.log")
    return process, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds of each wrk run (default 5)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load on each server first (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    args = parser.parse_args()
    require_wrk()
    print(f"bench: {os.cpu_count()} cores; wrk on core {CLIENT_CORE}, the fakes on cores {server_cores()}")
    if note := drift_note():
        print(note)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as temp:
        redis = start_redis(temp)
        servers = {"memory": fake("store-memory", "memory:", 1),
                   "sqlite": fake("store-sqlite", f"sqlite://{temp}/one.db", 1),
                   "sqlite x2": fake("store-sqlite-2", f"sqlite://{temp}/two.db", 2)}
        if redis is not None:
            servers["redis"] = fake("store-redis", f"redis://127.0.0.1:{redis[1]}/0?prefix=one:", 1)
            servers["redis x2"] = fake("store-redis-2", f"redis://127.0.0.1:{redis[1]}/0?prefix=two:", 2)
        try:
            for server in servers.values():
                server.start()
            results = interleaved_rounds(servers, rounds=args.rounds, seconds=args.seconds, warmup=args.warmup,
                                         connections=args.connections, check_timeout=30)
        finally:
            for server in servers.values():
                server.stop()
            if redis is not None:
                redis[0].terminate()
                redis[0].wait(10)
    rates = {name: [result.requests_per_second for result in runs] for name, runs in results.items()}
    errors = {name: sum(result.errors for result in runs) for name, runs in results.items()}
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\nCreate + poll cycle, requests/s (wrk -t1 -c{args.connections}, {args.seconds:g} s a round, {args.rounds} interleaved"
          f" rounds, {time.perf_counter() - started:.0f} s in all):")
    for name, values in rates.items():
        flag = f"   ({errors[name]:,} non-200 or socket errors)" if errors[name] else ""
        print(f"  {name:<12}" + "".join(f"{value:>10,.0f}" for value in values) + f"   median {medians[name]:>8,.0f}{flag}")
    print("\nRatios (medians):")
    for what, top, bottom in (("sqlite / memory", "sqlite", "memory"), ("redis / memory", "redis", "memory"),
                              ("sqlite, 2 workers / 1", "sqlite x2", "sqlite"), ("redis, 2 workers / 1", "redis x2", "redis")):
        if top in medians and bottom in medians:
            print(f"  {what:<24} {medians[top] / medians[bottom]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
