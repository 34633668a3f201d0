"""The server under test: the embedded fake (started here, on loopback) or any base URL, and
what kind of server it is (settings.TARGET_KINDS), detected or forced with --target.

A target that answers GET /__admin/clock is a fake with the admin API: the suite then moves its
clock instead of waiting, and reads its demo keys for the isolation checks. One of the service's
own domains is the real service; anything else without the admin API is an unknown server. Both
get the real service's caution: no admin, real waiting, paced requests, a budget. A fake on
another machine answers its admin API only to holders of its admin token: give it to the suite in
DASHSCOPE_CONTRACT_ADMIN_TOKEN.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from dataclasses import dataclass

import dashscope_schemas as ds
import httpx

from .settings import NO_KEY, Settings, region_of_base_url

KIND_WORDS = {"embedded": "the embedded fake", "fake": "a fake with the admin API", "real": "the real service (billed)",
              "unknown": "an unknown server (no admin API: treated as billed, real waiting)"}


def _admin_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class Admin:
    """The fake's /__admin API, for targets that have one."""

    def __init__(self, origin: str, token: str | None = None):
        self.origin = origin
        self._http = httpx.Client(base_url=origin, timeout=30, headers=_admin_headers(token))

    def now(self) -> float:
        return self._http.get("/__admin/clock").json()["now"]

    def advance(self, seconds: float) -> float:
        return self._http.post("/__admin/clock/advance", json={"seconds": seconds}).json()["now"]

    def keys(self) -> list[dict]:
        return self._http.get("/__admin/keys").json()["keys"]

    def regions(self) -> dict:
        return self._http.get("/__admin/regions").json()

    def add_scenario(self, scenario: dict) -> dict:
        response = self._http.post("/__admin/scenarios", json=scenario)
        response.raise_for_status()
        return response.json()

    def remove_scenario(self, scenario_id: str) -> None:
        self._http.delete(f"/__admin/scenarios/{scenario_id}")

    def close(self) -> None:
        self._http.close()

    @classmethod
    def probe(cls, origin: str, token: str | None = None) -> Admin | None:
        try:
            response = httpx.get(origin + "/__admin/clock", timeout=5, headers=_admin_headers(token))
            if response.status_code == 200 and "now" in response.json():
                return cls(origin, token)
        except (httpx.HTTPError, ValueError):
            pass
        return None


@dataclass
class Target:
    base_url: str                      # .../api/v1 of the region under test
    api_key: str
    region: str
    origin: str
    admin: Admin | None
    other_account_key: str | None      # same region, another account
    other_region: tuple[str, str] | None  # (base URL, key) of the same account in another region
    real: bool                         # no admin clock (real or unknown): budget, pacing, cheapest choices, real waiting
    description: str
    kind: str = "unknown"              # settings.TARGET_KINDS

    @property
    def is_fake(self) -> bool:
        return self.admin is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedFake:
    """The kit's fake in its own process on a free loopback port, for the duration of the run.

    A process, not a thread: the suite and the fake then use both cores instead of sharing one
    interpreter lock (about ten times faster on the 2-core machine).
    """

    def __init__(self, profile: str):
        self.port = _free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mock_server.cli", "serve", "--port", str(self.port), "--profile", profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        waiting = threading.Event()
        for _ in range(400):  # the process importing and binding its port: up to 20 s
            if self._process.poll() is not None:
                assert self._process.stderr is not None  # opened with stderr=PIPE
                raise RuntimeError(f"the embedded fake exited: {self._process.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.origin + "/__admin/clock", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            waiting.wait(0.05)
        self.stop()
        raise RuntimeError("the embedded fake did not start within 20 s")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        if self._process.stderr:
            self._process.stderr.close()


def detect_kind(settings: Settings) -> tuple[str, Admin | None]:
    """What kind of server the settings point at, and its admin API if it has one. A forced kind
    (--target) is believed, except that a fake must have its admin API; the embedded fake is
    started later, by the run."""
    if settings.base_url is None and settings.target not in (None, "embedded"):
        raise ValueError(f"--target {settings.target} needs DASHSCOPE_HTTP_BASE_URL (the base URL of the target)")
    if settings.embedded:
        return "embedded", None
    assert settings.base_url is not None  # not embedded
    if settings.target in ("real", "unknown"):
        return settings.target, None  # believed: no clock moving, real waiting, a budget
    if settings.points_at_real_service and settings.target is None:
        return "real", None  # nothing to probe: the service has no admin API
    catalog = ds.load_catalog(settings.profile)
    admin = Admin.probe(region_of_base_url(settings.base_url, catalog)[1], settings.admin_token)
    if settings.target == "fake" and admin is None:
        raise ValueError(f"--target fake, but no admin API answers at {region_of_base_url(settings.base_url, catalog)[1]}"
                         "/__admin/clock (a remote fake needs DASHSCOPE_CONTRACT_ADMIN_TOKEN)")
    return ("fake", admin) if admin is not None else ("unknown", None)


def resolve(settings: Settings, embedded: EmbeddedFake | None) -> Target:
    catalog = ds.load_catalog(settings.profile)
    region: str | None  # None: not given nor inferred from the base URL, asked of the admin API below
    if embedded is not None:
        region = settings.region or "cn-beijing"
        base_url, origin = f"{embedded.origin}/{region}/api/v1", embedded.origin
        # The embedded fake's own demo key, whatever DASHSCOPE_API_KEY holds: most users have a real
        # key exported, and the fake would refuse it (a run red with 401s of the suite's own making).
        api_key = next(k["key"] for k in httpx.get(origin + "/__admin/keys", timeout=10).json()["keys"] if k["region"] == region)
        ignored = " (the key in DASHSCOPE_API_KEY is ignored: the embedded fake has its own)" if settings.api_key else ""
        description = f"{settings.profile} profile, {base_url}{ignored}"
    else:
        if not settings.api_key:
            raise ValueError(NO_KEY)
        assert settings.base_url is not None  # no embedded fake: the settings name a base URL
        base_url, api_key = settings.base_url, settings.api_key
        inferred, origin = region_of_base_url(base_url, catalog)
        region = settings.region or inferred
        description = f"{base_url}"
    kind, admin = detect_kind(settings)
    if kind == "embedded":
        admin = Admin.probe(origin, settings.admin_token)
    if region is None:
        region = admin.regions().get("default_region", "cn-beijing") if admin else "cn-beijing"
    other_account, other_region = settings.other_account_key, None
    if admin is not None:
        keys = admin.keys()
        mine = next((k for k in keys if k["key"] == api_key), None)
        if mine is not None:
            other_account = other_account or next(
                (k["key"] for k in keys if k["region"] == region and k["account"] != mine["account"]), None)
            elsewhere = next((k for k in keys if k["region"] != region and k["account"] == mine["account"]), None)
            if elsewhere is not None:
                region_base = admin.regions()["regions"][elsewhere["region"]]["base_url"]
                other_region = (region_base, elsewhere["key"])
    if settings.other_region_key and other_region is None:
        other_region = (base_url, settings.other_region_key)  # a foreign key against our own region
    return Target(base_url=base_url, api_key=api_key, region=region, origin=origin, admin=admin,
                  other_account_key=other_account, other_region=other_region, real=admin is None,
                  description=f"{KIND_WORDS[kind]}: {description}", kind=kind)

