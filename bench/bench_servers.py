"""The fake against its anchors, in one run: requests per second of the create + poll cycle
(bench/load.lua) on four servers, driven by wrk in interleaved rounds (a b c d a b c d ...);
then memory per stored task and poll/list cost with 100 vs 1,000,000 tasks (bench_memory.py);
then the issue's goals as PASS / FAIL.

    .venv/bin/python bench/bench_servers.py [--rounds 3] [--seconds 5] [--prism] [--install] [--profile]

  (a) fake      dashscope-mock serve --fast --no-rate-limits (uvloop + httptools, access log off: serve's defaults)
  (b) bare h11  bench/bare_app.py on uvicorn's pure-Python stack (asyncio + h11), what the fake ran on before
  (c) bare max  bench/bare_app.py on uvicorn --loop uvloop --http httptools --no-access-log: the fake's stack
  (d) prism     Prism 5 mocking the fake's own /openapi.json (only with --prism)

Needs wrk (apt-get install -y wrk; no Python fallback: a client on one core would measure
itself). Installs nothing unless asked: --prism installs Prism with npm into bench/.cache/prism,
--install puts py-spy into bench/.cache/py (for --profile; uvloop and httptools, which (a) and
(c) run on, are the kit's own dependencies). Servers run pinned to core 1,
wrk to core 0 (1 thread, 32 connections). Figures, never assertions: exit 0 whatever they
say (--strict: exit 1 when a measured goal fails); 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import bench_memory
from harness import (
    CACHE,
    PYLIB,
    PYTHON,
    ROOT,
    Goal,
    Server,
    cycle_load,
    drift_note,
    free_port,
    interleaved_rounds,
    pinning_note,
    require_wrk,
    rss_bytes,
)

PRISM = CACHE / "prism" / "node_modules" / ".bin" / "prism"


def _pip_target(packages: list[str]) -> None:
    print(f"bench: installing {' '.join(packages)} into {PYLIB.relative_to(ROOT)} (pip --target)", flush=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--target", str(PYLIB), *packages], check=True)


def has_uvloop() -> bool:
    """Whether (c) can run: uvloop and httptools are the kit's dependencies, but uvloop has no
    wheel for every platform (none for Windows), where (c) is left out."""
    if importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools"):
        return True
    print("bench: (c) skipped: uvloop or httptools is not installed on this platform")
    return False


def prism_command() -> Path:
    if not PRISM.exists():
        if shutil.which("npm") is None:
            print("bench: --prism needs npm (Debian: apt-get install -y npm)", file=sys.stderr)
            sys.exit(2)
        print(f"bench: installing @stoplight/prism-cli@5 into {PRISM.parents[2].relative_to(ROOT)} (npm)", flush=True)
        subprocess.run(["npm", "install", "--prefix", str(PRISM.parents[2]), "--no-audit", "--no-fund", "--loglevel=error",
                        "@stoplight/prism-cli@5"], check=True)
    return PRISM


def py_spy_command(install: bool) -> str | None:
    found = shutil.which("py-spy") or (str(PYLIB / "bin" / "py-spy") if (PYLIB / "bin" / "py-spy").exists() else None)
    if found is None and install:
        _pip_target(["py-spy"])
        found = str(PYLIB / "bin" / "py-spy")
    if found is None:
        print(f"bench: --profile skipped: py-spy is not installed (--install, or {PYTHON} -m pip install --target {PYLIB} py-spy)")
    return found


def servers(args: argparse.Namespace) -> dict[str, Server]:
    found = {"a": Server("a-fake", [str(Path(PYTHON).parent / "dashscope-mock"), "serve", "--fast", "--no-rate-limits",
                                    "--host", "127.0.0.1", "--port", str(port := free_port())], port)}
    uvicorn = [PYTHON, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1"]
    found["b"] = Server("b-bare", [*uvicorn, "--port", str(port := free_port()), "--loop", "asyncio", "--http", "h11"], port)
    if has_uvloop():
        found["c"] = Server("c-bare-max", [*uvicorn, "--port", str(port := free_port()), "--loop", "uvloop", "--http", "httptools",
                                           "--no-access-log"], port)
    if args.prism:
        found["d"] = Server("d-prism", [str(prism_command()), "mock", "-h", "127.0.0.1", "-p", str(port := free_port()),
                                        f"{found['a'].url}/openapi.json"], port, prefix="", start_timeout=180)
    return found


LABELS = {"a": "(a) fake: dashscope-mock serve --fast --no-rate-limits", "b": "(b) bare app, asyncio + h11",
          "c": "(c) bare app, uvloop + httptools, no access log", "d": "(d) Prism 5 mocking the fake's /openapi.json"}


def profile(server: Server, py_spy: str, seconds: float, connections: int) -> None:
    """py-spy samples the fake while wrk drives it; prints where its CPU time goes."""
    assert server.process is not None
    handle, name = tempfile.mkstemp(suffix=".txt", dir=CACHE)
    os.close(handle)
    raw = Path(name)
    spy = subprocess.Popen([py_spy, "record", "--pid", str(server.process.pid), "--duration", f"{seconds:.0f}", "--rate", "250",
                            "--full-filenames", "--format", "raw", "--output", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    cycle_load(server, seconds, connections)
    _, error = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.stat().st_size:
        print(f"\nProfile: py-spy failed ({spy.returncode}): {error.strip()[:300]}")
        return
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(frame) for frame in stack.split(";") if frame.endswith(")") and not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        packages[frames[-1].split("(")[-1].split("/")[0].split(".")[0]] += samples
        for frame in set(frames):
            if "mock_server/" in frame:
                within[frame] += samples
    raw.unlink()
    print(f"\nWhere the fake's CPU time goes (py-spy, {total:,} samples under the same load, {raw.name} removed):")
    print("  own time by package: " + ", ".join(f"{name} {count / total:.0%}" for name, count in packages.most_common(10)))
    print("  own time by function:")
    for frame, count in own.most_common(15):
        print(f"    {count / total:6.1%}  {frame}")
    print("  mock_server functions, time including what they call:")
    for frame, count in within.most_common(20):
        print(f"    {count / total:6.1%}  {frame}")


def _frame(frame: str) -> str:
    """'name (path:line)' -> 'name (short path)': one entry per function."""
    name, _, where = frame.rpartition(" (")
    path = re.sub(r":\d+\)$", "", where)
    path = re.sub(r"^.*/(site-packages|python3\.\d+)/", "", path).replace(str(ROOT) + "/", "")
    return f"{name} ({path})"


def run_servers(args: argparse.Namespace) -> list[Goal]:
    started = time.perf_counter()
    chosen = servers(args)
    py_spy = py_spy_command(args.install) if args.profile else None
    rss_before = 0
    try:
        for key, server in chosen.items():
            if key == "d":
                chosen["a"].wait()  # Prism reads the fake's /openapi.json as it starts
            server.start()

        def measure_the_fake() -> None:
            nonlocal rss_before
            assert chosen["a"].process is not None
            rss_before = rss_bytes(chosen["a"].process.pid)

        results = interleaved_rounds(chosen, rounds=args.rounds, seconds=args.seconds, warmup=args.warmup,
                                     connections=args.connections, label=LABELS.__getitem__, before_rounds=measure_the_fake)
        assert chosen["a"].process is not None
        creates = sum(result.creates for result in results["a"])
        growth = (rss_bytes(chosen["a"].process.pid) - rss_before) / max(creates, 1)
        if py_spy:
            profile(chosen["a"], py_spy, args.seconds, args.connections)
    finally:
        for server in reversed(chosen.values()):
            server.stop()

    rates = {key: [result.requests_per_second for result in runs] for key, runs in results.items()}
    errors = {key: sum(result.errors for result in runs) for key, runs in results.items()}
    medians = {key: statistics.median(values) for key, values in rates.items()}
    print(f"\nCreate + poll cycle, requests/s (a cycle is 2 requests; wrk -t1 -c{args.connections}, {args.seconds:g} s a round,"
          f" {args.rounds} interleaved rounds, {time.perf_counter() - started:.0f} s in all):")
    print(f"  {'server':<56}" + "".join(f"{'round ' + str(n + 1):>10}" for n in range(args.rounds)) + f"{'median':>10}{'x fake':>9}")
    for key, values in rates.items():
        flag = f"   ({errors[key]:,} non-200 or socket errors)" if errors[key] else ""
        print(f"  {LABELS[key]:<56}" + "".join(f"{value:>10,.0f}" for value in values)
              + f"{medians[key]:>10,.0f}{medians[key] / medians['a']:>9.2f}{flag}")
    print(f"  the fake's resident memory grew {growth:,.0f} B per task it created in the rounds ({creates:,} tasks)")
    return [
        Goal("cycle rate, fake / bare app on uvloop + httptools (c)", medians["a"] / medians["c"] if "c" in medians else None, 0.5,
             at_least=True),
        Goal("cycle rate, fake / Prism (d)", medians["a"] / medians["d"] if "d" in medians else None, 4, at_least=True),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds of each wrk run on a server (default 5)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load on each server before the rounds (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--prism", action="store_true", help="also Prism 5 (installed with npm into bench/.cache/prism)")
    parser.add_argument("--install", action="store_true", help="install py-spy, which --profile needs, into bench/.cache/py")
    parser.add_argument("--profile", action="store_true", help="then sample the fake under load with py-spy")
    parser.add_argument("--memory-seconds", type=float, default=2, help="seconds of each latency run of the memory part (default 2)")
    parser.add_argument("--skip-memory", action="store_true", help="only the servers")
    parser.add_argument("--skip-servers", action="store_true", help="only memory and store size (what bench_memory.py does)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a measured goal fails")
    bench_memory.add_arguments(parser)
    args = parser.parse_args()
    require_wrk()
    print(f"bench: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, load average"
          f" {os.getloadavg()[0]:.2f} at the start; {pinning_note()}")
    if note := drift_note():
        print(note)
    goals = [] if args.skip_servers else run_servers(args)
    if not args.skip_memory:
        goals += bench_memory.measure(args.rounds, args.memory_seconds, args.tasks, large=args.large, where=args.where)
    print(f"\nGoals (load average {os.getloadavg()[0]:.2f} at the end; other work on the machine shows in these figures):")
    for goal in goals:
        print(goal.line())
    return 1 if args.strict and any(goal.passed is False for goal in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
