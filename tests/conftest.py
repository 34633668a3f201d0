"""The kit's test fixtures; what they are made of is in helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dashscope
import dashscope.client.base_api as sdk_base_api
import dashscope.v2.resources._jobs as sdk_v2_jobs
import httpx
import pytest
import requests
from helpers import SHARED, AppClient, LiveFake, Wire, make_service, serving

from mock_server.app import create_app
from mock_server.pytest_plugin import VirtualTime
from mock_server.service import FakeDashScope


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The official pages and their digest; CI has them beside the clone (../shared)."""
    if not (SHARED / "docs").is_dir():
        pytest.skip(f"the API pages are not at {SHARED}/docs (set DASHSCOPE_KIT_SHARED)")
    return SHARED


@pytest.fixture
def service() -> FakeDashScope:
    return make_service()


@pytest.fixture
def client(service: FakeDashScope) -> AppClient:
    c = AppClient(create_app(service=service))
    yield c
    c.close()


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
    """The SDK's poll loops sleep on the fake's virtual clock: wait()/call() of the 1.x classes
    (dashscope.client.base_api) and jobs.wait of the 2.0 Client (dashscope.v2.resources._jobs;
    its deadline stays on the real monotonic clock)."""
    fake_time = VirtualTime(live.service.clock.advance)
    monkeypatch.setattr(sdk_base_api, "time", fake_time)
    monkeypatch.setattr(sdk_v2_jobs, "time", fake_time)
    return fake_time


@pytest.fixture
def wire(monkeypatch) -> Wire:
    recorder, original = Wire(), requests.Session.request

    def request(session, method, url, *args, **kwargs):
        recorder.calls.append({"method": method.upper(), "path": httpx.URL(url).path, "params": kwargs.get("params"),
                               "headers": dict(kwargs.get("headers") or {}), "data": kwargs.get("data")})
        return original(session, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return recorder
