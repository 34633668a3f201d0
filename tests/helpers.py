"""What the kit's tests share: paths and keys of the fake, a fake to test against (in process, or
served on loopback), the SDK's sleep on the fake's clock, request bodies and assertions. Fixtures
are in conftest.py; everything here is plain and imported by name."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dashscope_schemas as ds
import httpx
import pytest
import uvicorn
from dashscope_schemas import load_catalog
from PIL import Image

from mock_server import accounts
from mock_server.clock import ControllableClock
from mock_server.config import Config
from mock_server.service import FakeDashScope

REPO = Path(__file__).resolve().parent.parent

FIXTURES = REPO / "fixtures"

SHARED = Path(__import__("os").environ.get("DASHSCOPE_KIT_SHARED", REPO.parent / "shared"))


def load_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))

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


def freeze(live) -> float:
    """Stop the virtual clock where it is, so a task's phase depends only on advance() calls."""
    return live.service.clock.advance(0)


class Wire:
    """Records what the SDK sends through `requests` (it still goes out unchanged)."""

    def __init__(self):
        self.calls: list[dict] = []


# --- HTTP request bodies and assertions -----------------------------------------------------------

API = "/cn-beijing/api/v1"
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def edit_body(model="qwen-image-edit-plus", text="make it blue", images=("https://e.com/a.png",), **params):
    content = [{"image": i} for i in images] + [{"text": text}]
    return {"model": model, "input": {"messages": [{"role": "user", "content": content}]}, "parameters": params}


def t2i_body(model="qwen-image-plus", prompt="a cat", **params):
    return {"model": model, "input": {"prompt": prompt}, "parameters": params}


def wan_body(prompt="put the clock by the vase", images=("https://e.com/a-tps-1104-1472.webp",), **params):
    return {"model": "wan2.5-i2i-preview", "input": {"prompt": prompt, "images": list(images)}, "parameters": params}


def assert_error(response, status, code, message=None, name="error"):
    assert response.status_code == status, response.text
    body = response.json()
    assert ds.validate(body, name) == []
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message
    return body


def png_size(client, url) -> tuple[int, int]:
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG"
        return image.size


def create(client, body, endpoint="text2image", key=None, region="cn-beijing"):
    response = client.post(f"/{region}/api/v1{PATHS[endpoint]}", json=body, headers=auth(key or demo_key(region=region), **ASYNC))
    assert response.status_code == 200, response.text
    assert ds.validate(response.json(), "task-created.response") == []
    return response.json()["output"]["task_id"]


def poll(client, task_id, key=None, region="cn-beijing"):
    response = client.get(f"/{region}/api/v1/tasks/{task_id}", headers=auth(key or demo_key(region=region)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert ds.validate(body, "task-query.response") == [], body
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving_process(command: list[str], log_path: Path) -> Iterator[str]:
    """Start `<command> --port P` on a free loopback port; yield its origin once GET
    /__admin/clock answers; terminate it (and close its log) however the test ends."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    log = log_path.open("wb")
    process = None
    try:
        process = subprocess.Popen([*command, "--port", str(port)], cwd=REPO,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        waiting = threading.Event()
        for _ in range(400):  # importing and binding the port: at most 20 s
            if process.poll() is not None:
                break
            try:
                if httpx.get(origin + "/__admin/clock", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            waiting.wait(0.05)
        else:
            pytest.fail(f"{' '.join(command[1:])} did not answer within 20 s")
        if process.poll() is not None:
            pytest.fail(f"{' '.join(command[1:])} exited with {process.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
        yield origin
    finally:
        if process is not None:
            stop(process)
        log.close()


def stop(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, and SIGKILL if it has not stopped within `grace` seconds; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
