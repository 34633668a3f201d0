"""What bench_servers.py and bench_memory.py share: servers started pinned to one core, wrk
pinned to the other, wrk's output read into numbers, and the goals printed as PASS or FAIL."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"          # gitignored (bench/.gitignore): Prism, uvloop/httptools/py-spy, logs
PYLIB = CACHE / "py"              # pip install --target: only server (c) and the profiler use it
PYTHON = sys.executable
KEY = "sk-demoabj1-0000000000000000"
PREFIX = "/cn-beijing/api/v1"
LOAD = BENCH / "load.lua"  # wrk's create + poll cycle
CREATE = {"model": "qwen-image-plus", "input": {"prompt": "a cat"}, "parameters": {"n": 1}}
SERVER_CORE, CLIENT_CORE = 1, 0


def pinned(core: int, command: list[str]) -> list[str]:
    """The command under `taskset -c core`, when there is taskset and more than one core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *command]
    return command


def pinning_note() -> str:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return f"servers pinned to core {SERVER_CORE}, the load generator to core {CLIENT_CORE} (taskset)"
    return "NOT pinned (needs taskset and 2 cores): server and load generator share the CPU"


def require_wrk() -> str:
    """wrk's path; without it, say how to install it and exit 2 (there is no fallback: a Python
    load generator on one core would measure itself as much as the server)."""
    path = shutil.which("wrk")
    if path is None:
        print("bench: wrk is not installed. On Debian/Ubuntu:  apt-get install -y wrk", file=sys.stderr)
        sys.exit(2)
    return path


def installed_drift() -> list[str]:
    """Files of the installed mock_server and dashscope_schemas that differ from the work tree's
    mock_server/ and schemas/. The venv holds a copy (scripts/test installs the kit as users
    do, not editable), and that copy is what the benchmarks measure."""
    import importlib.util

    drift = []
    for package, folder in (("mock_server", ROOT / "mock_server"), ("dashscope_schemas", ROOT / "schemas")):
        spec = importlib.util.find_spec(package)  # mock_server is a namespace package: no origin
        places = [Path(place) for place in (spec.submodule_search_locations or []) if Path(place) != folder] if spec else []
        if not places:
            continue  # run from the work tree itself
        installed = next((place for place in places if "site-packages" in place.parts), places[0])
        copies = {path.relative_to(installed) for path in installed.rglob("*") if path.suffix in (".py", ".json")}
        sources = {path.relative_to(folder) for path in folder.rglob("*.py") if "__pycache__" not in path.parts}
        for name in sorted(copies | (sources if package == "mock_server" else set())):
            source, copy = folder / name, installed / name
            if not source.exists() or not copy.exists() or source.read_bytes() != copy.read_bytes():
                drift.append(f"{folder.name}/{name}")
    return drift


def drift_note() -> str | None:
    drift = installed_drift()
    if not drift:
        return None
    shown = ", ".join(drift[:6]) + (f" and {len(drift) - 6} more" if len(drift) > 6 else "")
    return (f"NOTE: the installed kit differs from the work tree ({shown}); what is measured is the installed copy."
            " To measure the work tree: .venv/bin/python -m pip install --quiet .")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"not listening on {port} after {timeout:.0f} s; see {log}")


def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Server:
    """A server process on loopback, pinned to the server core, its output in a log file."""

    name: str
    command: list[str]
    port: int
    prefix: str = PREFIX
    start_timeout: float = 60.0
    process: subprocess.Popen | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return CACHE / "logs" / f"{self.name}.log"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(pinned(SERVER_CORE, self.command), cwd=ROOT, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait(self) -> None:
        assert self.process is not None
        wait_port(self.port, self.process, self.start_timeout, self.log_path)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


@dataclass
class WrkResult:
    requests_per_second: float
    p50: float | None = None    # seconds (with --latency)
    p99: float | None = None
    errors: int = 0             # non-200 answers and socket errors
    creates: int = 0            # load.lua's count of creates sent
    output: str = ""


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _duration(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, seconds: float, connections: int, script: Path | None = None, script_args: list[str] | None = None,
        headers: list[str] | None = None, latency: bool = False) -> WrkResult:
    """One wrk run (1 thread) pinned to the client core."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    command += ["--latency"] if latency else []
    for header in headers or []:
        command += ["-H", header]
    command += ["-s", str(script)] if script else []
    command.append(url)
    command += ["--", *script_args] if script_args is not None else []
    done = subprocess.run(pinned(CLIENT_CORE, command), capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({done.returncode}): {out}{done.stderr}")
    result = WrkResult(float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1)), output=out)  # type: ignore[union-attr]
    if latency:
        percentiles = dict(re.findall(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.M))
        result.p50, result.p99 = _duration(percentiles["50"]), _duration(percentiles["99"])
    if match := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out):
        result.errors += int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result.errors += sum(int(n) for n in match.groups())
    if match := re.search(r"cycle: creates (\d+) polls (\d+) non-200 (\d+)", out):
        result.creates = int(match.group(1))
    return result


def _send(server: Server, method: str, path: str, body: dict | None, timeout: float) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {KEY}"}
    if body is not None:
        headers |= {"X-DashScope-Async": "enable", "Content-Type": "application/json"}
    request = urllib.request.Request(server.url + server.prefix + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def check_cycle(server: Server, timeout: float = 10) -> str | None:
    """One create + poll by hand: None when both answer 200 with the task's id, else what went
    wrong (it also waits for a worker to take connections)."""
    try:
        status, created = _send(server, "POST", "/services/aigc/text2image/image-synthesis", CREATE, timeout)
        task_id = created.get("output", {}).get("task_id") if status == 200 else None
        if task_id is None:
            return f"create answered {status}"
        status, polled = _send(server, "GET", f"/tasks/{task_id}", None, timeout)
    except (OSError, ValueError) as exc:  # no answer, or not JSON
        return f"{exc}"
    return None if status == 200 and polled.get("output", {}).get("task_id") == task_id else f"poll answered {status}"


def cycle_load(server: Server, seconds: float, connections: int) -> WrkResult:
    """wrk driving the create + poll cycle (bench/load.lua) against one server."""
    return wrk(server.url, seconds, connections, script=LOAD, script_args=[server.prefix])


def interleaved_rounds(servers: dict[str, Server], *, rounds: int, seconds: float, warmup: float, connections: int,
                       check_timeout: float = 10, label: Callable[[str], str] = str,
                       before_rounds: Callable[[], None] = lambda: None) -> dict[str, list[WrkResult]]:
    """The servers (started) waited for and checked with one cycle by hand (one that fails is
    left out of `servers`, with a line saying why), each warmed up for `warmup` seconds, then
    `rounds` rounds of `seconds` of the cycle on each in turn (a b c a b c ...: whatever else the
    machine does falls on all alike), each round's rates printed. `before_rounds` runs just
    before the first round. Returns each server's wrk results, a round each."""
    for key, server in list(servers.items()):
        server.wait()
        if problem := check_cycle(server, check_timeout):
            print(f"bench: {label(key)}: {problem}; left out (log: {server.log_path})")
            del servers[key]
    for server in servers.values():
        cycle_load(server, warmup, connections)
    before_rounds()
    results: dict[str, list[WrkResult]] = {key: [] for key in servers}
    for number in range(rounds):
        for key, server in servers.items():
            results[key].append(cycle_load(server, seconds, connections))
        print(f"  round {number + 1}/{rounds}: "
              + "  ".join(f"{key} {runs[-1].requests_per_second:,.0f}/s" for key, runs in results.items()), flush=True)
    return results


@dataclass
class Goal:
    what: str
    value: float | None     # None: not measured in this run
    limit: float
    at_least: bool          # True: value >= limit passes; False: value <= limit passes
    unit: str = "x"

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[self.passed]
        shown = "not measured" if self.value is None else f"{self.value:,.2f}{self.unit}"
        sign = ">=" if self.at_least else "<="
        return f"  {verdict}  {self.what:<58} {shown:>14}   (goal {sign} {self.limit:,g}{self.unit})"

