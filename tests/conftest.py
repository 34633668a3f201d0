from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time as real_time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dashscope
import dashscope.client.base_api as sdk_base_api
import httpx
import pytest
import requests
import uvicorn
from dashscope_schemas import load_catalog

from mock_server import accounts
from mock_server.app import create_app
from mock_server.clock import ControllableClock
from mock_server.config import Config
from mock_server.service import FakeDashScope

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SHARED = Path(__import__("os").environ.get("DASHSCOPE_KIT_SHARED", REPO.parent / "shared"))


def load_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The official pages and their digest; CI has them beside the clone (../shared)."""
    if not (SHARED / "docs").is_dir():
        pytest.skip(f"the API pages are not at {SHARED}/docs (set DASHSCOPE_KIT_SHARED)")
    return SHARED


# --- the fake, in process and on loopback ------------------------------------------------------

ASYNC = {"X-DashScope-Async": "enable"}
# The generation endpoints' paths below a region's base URL, from the catalog's plan of the API.
PATHS = {name: endpoint.path for name, endpoint in load_catalog().generation_endpoints.items()}


def demo_key(account: str = "a", region: str = "cn-beijing", n: int = 1) -> str:
    """A demo key: account 'a' or 'b', a region, key 1 or 2 of that account there."""
    for key in accounts.load_keys(None).all():
        if key.account == f"demo-account-{account}" and key.region == region and key.key_id.endswith(f"-{n}"):
            return key.key
    raise KeyError((account, region, n))


def auth(key: str | None = None, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key or demo_key()}", **more}


def make_service(**overrides) -> FakeDashScope:
    """A fake on a controllable clock; rate limits off unless asked for, so that tests of other
    features are not slowed by them (serve has them on, as the real service does)."""
    overrides.setdefault("rate_limits", {"enabled": False})
    return FakeDashScope(Config.load(**overrides), clock=ControllableClock())


@pytest.fixture
def service() -> FakeDashScope:
    return make_service()


class AppClient:
    """httpx against the ASGI app in process, with a synchronous face for plain test functions."""

    def __init__(self, app, base_url: str = "http://testserver", caller: str = "127.0.0.1"):
        self._loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, client=(caller, 50123))  # caller: the peer address the app sees
        self._client = httpx.AsyncClient(transport=transport, base_url=base_url)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture
def client(service: FakeDashScope) -> AppClient:
    c = AppClient(create_app(service=service))
    yield c
    c.close()


@dataclass
class LiveFake:
    origin: str
    service: FakeDashScope

    def base_url(self, region: str = "cn-beijing") -> str:
        return f"{self.origin}/{region}/api/v1"


@contextlib.contextmanager
def serving(app, host: str = "127.0.0.1", **config) -> Iterator[int]:
    """`app` served by uvicorn in a thread on a free port of `host`; yields the port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    config.setdefault("lifespan", "off")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.01)  # the server thread binding, not a clock-based behaviour
    assert server.started, "uvicorn did not start"
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_fake() -> Iterator[LiveFake]:
    """The fake served by uvicorn on a free loopback port for the whole session."""
    service = make_service()
    with serving(create_app(service=service)) as port:
        yield LiveFake(f"http://127.0.0.1:{port}", service)


@pytest.fixture
def live(live_fake: LiveFake) -> LiveFake:
    """The live fake, reset (empty store, real time) before each test."""
    live_fake.service.reset()
    return live_fake


# --- the official SDK pointed at the live fake --------------------------------------------------


class VirtualTime:
    """Stands in for the `time` module inside dashscope.client.base_api only: the SDK's polling
    sleep advances the fake's virtual clock instead of the wall clock; everything else is real."""

    def __init__(self, clock):
        self.clock = clock
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

    def __getattr__(self, name):  # time(), monotonic(), ... stay the real ones
        return getattr(real_time, name)


@pytest.fixture
def sdk(live, monkeypatch):
    """Point the SDK at a region of the live fake (Beijing first); returns a function to switch region."""

    def use_region(region: str = "cn-beijing") -> str:
        monkeypatch.setattr(dashscope, "base_http_api_url", live.base_url(region))
        return live.base_url(region)

    use_region()
    return use_region


@pytest.fixture
def virtual_sleep(live, monkeypatch) -> VirtualTime:
    """The SDK's wait()/call() poll loop sleeps on the fake's virtual clock."""
    fake_time = VirtualTime(live.service.clock)
    monkeypatch.setattr(sdk_base_api, "time", fake_time)
    return fake_time


def freeze(live) -> float:
    """Stop the virtual clock where it is, so a task's phase depends only on advance() calls."""
    return live.service.clock.advance(0)


class _Wire:
    """Records what the SDK sends through `requests` (it still goes out unchanged)."""

    def __init__(self):
        self.calls: list[dict] = []


@pytest.fixture
def wire(monkeypatch) -> _Wire:
    recorder, original = _Wire(), requests.Session.request

    def request(session, method, url, *args, **kwargs):
        recorder.calls.append({"method": method.upper(), "path": httpx.URL(url).path, "params": kwargs.get("params"),
                               "headers": dict(kwargs.get("headers") or {}), "data": kwargs.get("data")})
        return original(session, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return recorder
