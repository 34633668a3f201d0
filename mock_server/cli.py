"""dashscope-mock serve: run the fake on uvicorn and say how to reach it; and the subcommands that
drive a running fake (drive.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from . import drive
from .access import is_loopback
from .accounts import mask_key
from .app import create_app
from .config import Config
from .errors import DashScopeError
from .pages import base_urls as region_base_urls
from .service import FakeDashScope
from .stores import is_shared
from .stores import shown as shown_store
from .transport import event_loop, protocol_with_head_timeout


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dashscope-mock", description="A fake of the DashScope image APIs.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8089, help="default 8089; 0: a free port (the banner and --ready-file say which)")
    serve.add_argument("--ready-file", help="once the fake accepts connections, write its root URL (one line) to this file")
    serve.add_argument("--profile", help="API profile: current (default) or 2025-12")
    serve.add_argument("--config", help="a JSON or TOML file overriding the embedded defaults")
    serve.add_argument("--keys", help="accounts and keys file (shape of fixtures/demo-keys.json)")
    serve.add_argument("--fast", action="store_true", help="every async task finishes on its first poll")
    serve.add_argument("--scenarios", help="a JSON file of scenarios to load at start (a list, or {\"scenarios\": [...]})")
    serve.add_argument("--no-rate-limits", action="store_true", help="turn the documented rate limits off")
    serve.add_argument("--rate-limit-scale", type=float, help="multiply every rate limit (e.g. 10 for a load test)")
    serve.add_argument("--admin-token", help="also let callers from other machines use /__admin, with "
                       "'Authorization: Bearer TOKEN' (default: this machine only)")
    serve.add_argument("--read-timeout", type=float,
                       help="seconds a client may take to send a request's head, or its body (default 30)")
    serve.add_argument("--access-log", action="store_true",
                       help="log every request (off by default: a line per request costs more than serving it)")
    serve.add_argument("--http", choices=("auto", "httptools", "h11"), default="auto",
                       help="HTTP parser: httptools where installed (auto, the default), or h11")
    serve.add_argument("--show-keys", action="store_true",
                       help="print keys from a --keys file in full (the embedded demo keys always are)")
    serve.add_argument("--store", help="where the state lives: memory: (the default: this process only), "
                       "sqlite:///path/to/state.db (survives restarts, shared by --workers) or redis://host:port/db "
                       "(shared by fakes on several machines)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes on one socket, sharing the store (needs sqlite: or redis:); default 1")
    drive.add_commands(commands)
    return parser


def banner(service: FakeDashScope, base: str, show_keys: bool, host: str = "127.0.0.1") -> str:
    # The embedded demo keys open nothing but the fake, so they are shown whole; keys from a
    # user's file may resemble real ones, so they are masked unless asked for.
    show_keys = show_keys or service.config.keys_file is None
    lines = [f"dashscope-mock: profile {service.config.profile}, serving {base}", ""]
    for region, urls in region_base_urls(service, base).items():
        default = " (also plain /api/v1)" if region == service.config.default_region else ""
        lines.append(f"  {region}: base URL {urls['base_url']}{default}")
        for key in service.keys.all():
            if key.region == region:
                shown = key.key if show_keys else mask_key(key.key)
                lines.append(f"      {key.account:<16} {shown}  ({key.key_id})")
    limits = service.config.rate_limits
    lines += ["", f"  Rate limits: {'on, scale ' + format(limits.get('scale', 1.0), 'g') if limits.get('enabled', True) else 'off'};"
              f" scenarios loaded: {len(service.scenarios.all())}; OpenAPI: {base}/openapi.json"]
    lines += ["", "  SDK:  export DASHSCOPE_HTTP_BASE_URL=<base URL> DASHSCOPE_API_KEY=<a key of that region>",
              f"  Keys in full: {base}/__admin/keys   Clock: {base}/__admin/clock   Requests: {base}/__admin/requests",
              f"  Drive it: DASHSCOPE_MOCK_URL={base} dashscope-mock requests|advance|scenario|reset|usage|clock", ""]
    if not is_loopback(host):
        opened = ("and to callers sending 'Authorization: Bearer <admin token>'" if service.config.admin_token
                  else "only (--admin-token opens it to others)")
        lines += [f"  WARNING: listening on {host}, not loopback: the faked API (with these demo keys) is reachable",
                  f"  from the network. The control API /__admin answers this machine {opened}.", ""]
    return "\n".join(lines)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _scenario_file(path: str | None) -> list[Any] | None:
    if not path:
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = data.get("scenarios") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{path}: a list of scenarios, or an object with a scenarios list")
    return entries


class _Server(uvicorn.Server):
    """uvicorn's server, telling `on_ready` the port it listens on once it accepts connections,
    and `on_stop` when it stops accepting them (uvicorn re-raises SIGTERM after its shutdown, so
    code after run() may never run)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[int], None], on_stop: Callable[[], None]):
        super().__init__(config)
        self.on_ready, self.on_stop = on_ready, on_stop

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_ready(self.servers[0].sockets[0].getsockname()[1])

    async def shutdown(self, sockets: Any = None) -> None:
        self.on_stop()
        await super().shutdown(sockets)


def _write_atomically(path: Path, text: str) -> None:
    """Whoever waits for the file sees it whole or not at all."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command != "serve":
        return drive.run(args)
    try:
        config = _config_of(args)
        if args.workers < 1:
            raise ValueError("--workers: at least 1")
        if args.workers > 1 and not is_shared(config.store):
            raise ValueError(f"--workers {args.workers} needs a store the workers share: --store sqlite:///path/to/state.db "
                             "or --store redis://host:port/db (each worker would have its own memory:)")
        service = FakeDashScope(config)
    except (OSError, ValueError) as exc:
        print(f"dashscope-mock: {exc}", file=sys.stderr)
        return 2
    except DashScopeError as exc:  # the store did not answer
        print(f"dashscope-mock: store {shown_store(config.store)}: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 2
    ready_file = Path(args.ready_file) if args.ready_file else None
    if ready_file:
        ready_file.unlink(missing_ok=True)  # a stale one from an earlier run must not be mistaken for this one

    def ready(port: int) -> None:
        base = f"http://{_url_host(args.host)}:{port}"
        print(banner(service, base, args.show_keys, args.host), flush=True)
        if ready_file:
            _write_atomically(ready_file, base + "\n")

    def stopping() -> None:
        if ready_file:
            with contextlib.suppress(OSError):
                ready_file.unlink()  # the URL it names stops answering

    if args.workers > 1:
        return _serve_workers(args, sys.argv[1:] if argv is None else argv, ready, stopping)
    server = _Server(_uvicorn_config(args, config, service), ready, stopping)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    service.close()
    return 0 if server.started else 1


def _config_of(args: argparse.Namespace) -> Config:
    """The serve command's settings: the config file, then the command line."""
    rate_limits = {k: v for k, v in (("enabled", False if args.no_rate_limits else None),
                                     ("scale", args.rate_limit_scale)) if v is not None}
    config = Config.load(args.config, profile=args.profile, keys_file=args.keys,
                         scenarios=_scenario_file(args.scenarios), rate_limits=rate_limits or None,
                         admin_token=args.admin_token, read_timeout_seconds=args.read_timeout, store=args.store)
    return config.with_fast_tasks() if args.fast else config


def _uvicorn_config(args: argparse.Namespace, config: Config, service: FakeDashScope) -> uvicorn.Config:
    app = create_app(service=service)
    app.state.server_process = True  # the process is the server: housekeeping may tune its collector
    return uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                          access_log=args.access_log, loop=event_loop(),
                          http=protocol_with_head_timeout(config.read_timeout, args.http))


# --- several workers -----------------------------------------------------------------------
# The parent binds the socket, starts N workers (each a whole fake on the shared store, serving
# that socket: the kernel hands each connection to one of them), says where it listens once
# every worker accepts, restarts a worker that dies, and stops them all on SIGTERM or Ctrl-C.

WORKER_START_SECONDS = 60.0
RESTART_WAIT_MAX = 30.0


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _die_with_parent(parent: int) -> None:
    """A worker whose supervisor is gone (even by kill -9) stops too, rather than hold the port."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _worker(argv: list[str], sock: socket.socket, started: Any, parent: int) -> None:
    """One worker process: the same fake as the parent's, from the same command line."""
    _die_with_parent(parent)
    args = _parser().parse_args(argv)
    config = _config_of(args)
    service = FakeDashScope(config)
    server = _Server(_uvicorn_config(args, config, service), lambda port: started.put(os.getpid()), lambda: None)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    service.close()


def _serve_workers(args: argparse.Namespace, argv: list[str], ready: Callable[[int], None], stopping: Callable[[], None]) -> int:
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"dashscope-mock: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    context = multiprocessing.get_context("spawn")
    started = context.Queue()
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        process = context.Process(target=_worker, args=(argv, sock, started, os.getpid()), daemon=False)
        process.start()
        return process

    workers = [start() for _ in range(args.workers)]
    try:
        waiting = set(range(args.workers))
        deadline = time.monotonic() + WORKER_START_SECONDS
        while waiting and not stop:
            if time.monotonic() > deadline or any(not w.is_alive() for w in workers):
                print("dashscope-mock: a worker did not start", file=sys.stderr)
                return 1
            with contextlib.suppress(queue.Empty):
                started.get(timeout=0.2)
                waiting.pop()
        if stop:
            return 0
        ready(sock.getsockname()[1])
        # A worker that dies soon after it started (its store away, say) is restarted after a
        # wait that doubles up to RESTART_WAIT_MAX, not twice a second for ever.
        born = [time.monotonic()] * len(workers)
        wait = [0.0] * len(workers)
        restart_at: list[float | None] = [None] * len(workers)
        while not stop:
            multiprocessing.connection.wait([w.sentinel for w in workers if w.is_alive()], timeout=0.5)
            for index, worker in enumerate(workers):
                if worker.is_alive() or stop:
                    continue
                now = time.monotonic()
                if restart_at[index] is None:
                    quick = now - born[index] < RESTART_WAIT_MAX
                    wait[index] = min(RESTART_WAIT_MAX, max(0.5, wait[index] * 2)) if quick else 0.0
                    restart_at[index] = now + wait[index]
                    print(f"dashscope-mock: worker {worker.pid} exited ({worker.exitcode}); starting another"
                          + (f" in {wait[index]:g} s" if wait[index] else ""), file=sys.stderr)
                if now >= (restart_at[index] or now):
                    workers[index], born[index], restart_at[index] = start(), now, None
        return 0
    finally:
        stopping()
        for worker in workers:
            worker.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
