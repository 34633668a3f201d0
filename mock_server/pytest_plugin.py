"""The kit's pytest plugin, registered by `pip install` (entry point pytest11): the fixture
`dashscope_fake` and the marker `@pytest.mark.dashscope_fake(...)`.

    def test_my_app_makes_a_picture(dashscope_fake):
        from dashscope import ImageSynthesis
        answer = ImageSynthesis.call(model="qwen-image-plus", prompt="a red boat")   # hits the fake
        assert answer.status_code == 200
        assert dashscope_fake.requests("text2image")[0]["body"]["input"]["prompt"] == "a red boat"

A fake per configuration runs on a free loopback port in a background thread for the whole
session and is reset before each test. For the test's duration the official SDK points at it:
`dashscope.base_http_api_url`, `dashscope.api_key` and the environment variables it reads (a
demo key of the default region), restored afterwards, so a test can never reach the real,
billed service by accident (setting DASHSCOPE_HTTP_BASE_URL after `import dashscope` would be
ignored: the SDK read it at import). The SDK's polling sleeps (1.x classes, blocking and
asyncio, and SDK 2.0's job waits) move the fake's clock instead of waiting, so realistic task
timing costs milliseconds.

Nothing here is imported until a test asks for the fixture: an app's suite that does not use
it pays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time as real_time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from .admin_client import AdminClient

MARKER = "dashscope_fake"
# What the SDK reads to find the service and its key: pointed at the fake for each test.
SDK_ENVIRONMENT = ("DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_BASE_URL", "DASHSCOPE_API_KEY")
# A proxy the environment names (a CI runner's, or one set to keep tests off the internet) must
# not stand between the SDK and the fake on loopback: the fake's host joins the proxy exceptions.
NO_PROXY = ("NO_PROXY", "no_proxy")
# The SDK modules whose pauses between polls become moves of the fake's clock: 1.x's wait/call
# (blocking and asyncio) and 2.0's jobs.wait.
SDK_SLEEPERS = ("dashscope.client.base_api", "dashscope.v2.resources._jobs")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(profile=None, rate_limits=False, fast=False, scenarios=None): configure the dashscope_fake fixture"
        " for this test (an API profile, the documented rate limits on, tasks that finish on their first poll,"
        " scenarios to load after the reset)")


@dataclass(frozen=True)
class FakeOptions:
    """What a marker may change; one server per distinct value, kept for the session."""

    profile: str | None = None
    rate_limits: bool = False
    fast: bool = False

    @classmethod
    def of(cls, marker: pytest.Mark | None) -> tuple[FakeOptions, list[dict[str, Any]]]:
        kwargs = dict(marker.kwargs) if marker else {}
        scenarios = list(kwargs.pop("scenarios", None) or [])
        unknown = set(kwargs) - {"profile", "rate_limits", "fast"}
        if marker and (marker.args or unknown):
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes profile=, rate_limits=, fast=, scenarios= (got "
                                    f"{', '.join([*map(repr, marker.args), *sorted(unknown)])})")
        return cls(**kwargs), scenarios


@dataclass
class _Served:
    """One fake, served by uvicorn on a loopback port from a thread that runs its event loop."""

    options: FakeOptions
    origin: str = ""
    app: Any = None
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _server: Any = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn

        from .app import create_app
        from .clock import ControllableClock
        from .config import Config
        from .service import FakeDashScope

        config = Config.load(profile=self.options.profile,
                             rate_limits=None if self.options.rate_limits else {"enabled": False})
        if self.options.fast:
            config = config.with_fast_tasks()
        self.app = create_app(service=FakeDashScope(config, clock=ControllableClock()))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._server.serve(sockets=[sock]),),
                                        name=f"dashscope-fake {self.origin}", daemon=True)
        self._thread.start()
        ready = threading.Event()
        deadline = real_time.monotonic() + 20
        while not self._server.started and self._thread.is_alive() and real_time.monotonic() < deadline:
            ready.wait(0.01)  # uvicorn binding its socket in the thread: not a clock-based behaviour
        if not self._server.started:
            raise RuntimeError("the DashScope fake did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self.loop.is_running():  # a server that did not stop in time keeps its loop
            self.loop.close()

    def http_client(self, **options: Any) -> httpx.Client:
        return httpx.Client(transport=_InProcessTransport(self.app, self.loop), **options)


class _InProcessTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to the fake's ASGI app on the fake's own event
    loop, without a socket: SDK 2.0's `dashscope.Client(http_client=...)` then talks to the fake
    in-process."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop):
        self._asgi = httpx.ASGITransport(app=app, client=("127.0.0.1", 50123))
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._asgi.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=60)
        return httpx.Response(status, headers=headers, content=content, request=request)


class VirtualTime:
    """Stands in for `time` inside the SDK's polling modules: sleep() moves the fake's clock by
    `advance` (and remembers how long each pause was); everything else is the real module."""

    def __init__(self, advance: Callable[[float], object]):
        self._advance = advance
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._advance(max(float(seconds), 0.0))

    def __getattr__(self, name: str) -> Any:  # time(), monotonic() ... stay the real ones
        return getattr(real_time, name)


class _VirtualAsyncio:
    """Stands in for `asyncio` inside the same modules: `await asyncio.sleep(s)` moves the clock
    (from a worker thread, so the test's own event loop is never blocked) and yields once."""

    def __init__(self, advance: Callable[[float], object]):
        self._advance = advance

    async def sleep(self, seconds: float, result: Any = None) -> Any:
        await asyncio.to_thread(self._advance, max(float(seconds), 0.0))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@contextlib.contextmanager
def _sdk_pointed_at(fake: AdminClient) -> Iterator[None]:
    """The SDK (module settings, environment, polling sleeps) on the fake for the block; all
    restored afterwards."""
    import importlib

    saved_env = {name: os.environ.get(name) for name in (*SDK_ENVIRONMENT, *NO_PROXY)}
    os.environ.update({"DASHSCOPE_HTTP_BASE_URL": fake.base_url, "DASHSCOPE_BASE_URL": fake.base_url,
                       "DASHSCOPE_API_KEY": fake.api_key})
    host = httpx.URL(fake.url).host
    for name in NO_PROXY:
        os.environ[name] = ",".join(filter(None, (saved_env[name], host)))
    patched: list[tuple[Any, str, Any]] = []
    try:
        try:
            sdk: Any = importlib.import_module("dashscope")
        except ImportError:  # the app does not use the SDK: the environment is pointed all the same
            sdk = None
        if sdk is not None:
            for attribute, value in (("base_http_api_url", fake.base_url), ("api_key", fake.api_key)):
                patched.append((sdk, attribute, getattr(sdk, attribute, None)))
                setattr(sdk, attribute, value)
            for module_name in SDK_SLEEPERS:
                try:
                    module = importlib.import_module(module_name)
                except ImportError:  # an SDK version without this module
                    continue
                for name, stand_in in (("time", VirtualTime(fake.advance)), ("asyncio", _VirtualAsyncio(fake.advance))):
                    if hasattr(module, name):
                        patched.append((module, name, getattr(module, name)))
                        setattr(module, name, stand_in)
        yield
    finally:
        for owner, name, value in reversed(patched):
            setattr(owner, name, value)
        for variable, saved in saved_env.items():
            if saved is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = saved


class _Fakes:
    """The session's fakes, one per FakeOptions, started when first asked for."""

    def __init__(self) -> None:
        self._served: dict[FakeOptions, tuple[_Served, AdminClient]] = {}

    def get(self, options: FakeOptions) -> tuple[_Served, AdminClient]:
        if options not in self._served:
            from .admin_client import AdminClient

            served = _Served(options)
            served.start()
            self._served[options] = (served, AdminClient(served.origin, http_client_factory=served.http_client))
        return self._served[options]

    def close(self) -> None:
        for served, admin in self._served.values():
            admin.close()
            served.stop()
        self._served.clear()


@pytest.fixture(scope="session")
def _dashscope_fakes() -> Iterator[_Fakes]:
    fakes = _Fakes()
    yield fakes
    fakes.close()


@pytest.fixture
def dashscope_fake(request: pytest.FixtureRequest, _dashscope_fakes: _Fakes) -> Iterator[AdminClient]:
    """A DashScope fake for this test, reset, with the official SDK pointed at it (see the module)."""
    options, scenarios = FakeOptions.of(request.node.get_closest_marker(MARKER))
    _, fake = _dashscope_fakes.get(options)
    fake.reset()
    for scenario in scenarios:
        scenario = dict(scenario)
        fake.scenario(scenario.pop("effect"), scenario.pop("match", None), scenario.pop("times", None), **scenario)
    with _sdk_pointed_at(fake):
        yield fake
