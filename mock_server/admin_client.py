"""AdminClient: a running fake, driven from Python through its /__admin API.

The handle the pytest plugin's `dashscope_fake` fixture gives a test is one of these, and so is
`AdminClient("http://127.0.0.1:8089")` for a fake started elsewhere (a CI service, a shared
staging fake with `--admin-token`). Everything goes through the documented HTTP control API, so
both behave alike; only `http_client()` differs: the fixture's serves the fake in-process.

    fake = AdminClient("http://127.0.0.1:8089")
    fake.base_url, fake.api_key                    # what to point an app or the SDK at
    with fake.scenario({"type": "fail_task", "code": "InternalError"}, match={"model": "qwen-image-plus"}, times=1):
        ...                                         # the scenario is removed on the way out
    fake.advance(24 * 3600)                         # a day passes on the fake's clock
    [r["status"] for r in fake.requests("text2image")]
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

from .access import is_loopback

DEFAULT_TIMEOUT = 30.0


class AdminError(RuntimeError):
    """The fake refused a control request (or did not answer it)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Scenario:
    """A scenario live on the fake. Usable as a context manager that removes it on the way out."""

    def __init__(self, admin: AdminClient, data: dict[str, Any]):
        self._admin, self.data = admin, data

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def applied(self) -> int:
        """How many requests it has acted on so far (asked of the fake)."""
        return int(self.refresh().get("applied", 0))

    @property
    def remaining(self) -> int | None:
        """How many more it will act on (None: every matching one), asked of the fake."""
        remaining = self.refresh().get("remaining")
        return None if remaining is None else int(remaining)

    def refresh(self) -> dict[str, Any]:
        found = next((s for s in self._admin.scenarios() if s["id"] == self.id), None)
        if found is not None:
            self.data = found
        return self.data

    def remove(self) -> None:
        """Take it off the fake (nothing happens if it is already gone)."""
        response = self._admin._http.delete(f"/__admin/scenarios/{self.id}")
        if response.status_code not in (200, 404):
            raise _error(response)

    def __enter__(self) -> Scenario:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Scenario({self.data!r})"


def _error(response: httpx.Response) -> AdminError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return AdminError(response.status_code, str(body.get("code", "")), str(body.get("message", response.text[:200])))


class AdminClient:
    """A fake's control API. `url` is its root (scheme, host and port)."""

    def __init__(self, url: str, *, admin_token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 http_client_factory: Callable[..., httpx.Client] | None = None):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        # A fake on this machine is reached directly, whatever proxy the environment names.
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers,
                                  trust_env=not is_loopback(httpx.URL(self.url).host or ""))
        self._http_client_factory = http_client_factory
        try:
            regions = self._get("/__admin/regions")
            self._keys: list[dict[str, Any]] = self._get("/__admin/keys")["keys"]
        except BaseException:
            self._http.close()
            raise
        self.default_region: str = regions["default_region"]
        self.regions: tuple[str, ...] = tuple(regions["regions"])

    # --- where the fake is, and its keys ------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The default region's API base (what DASHSCOPE_HTTP_BASE_URL takes)."""
        return self.base_url_for(self.default_region)

    def base_url_for(self, region: str) -> str:
        if region not in self.regions:
            raise ValueError(f"no region {region!r} on this fake (regions: {', '.join(self.regions)})")
        return f"{self.url}/{region}/api/v1"

    @property
    def api_key(self) -> str:
        """A demo key of the first account in the default region."""
        return self.key()

    def key(self, region: str | None = None, account: str = "a") -> str:
        """A key of `account` ("a", "b" or a full account name) valid in `region` (the default one if None)."""
        region = region or self.default_region
        wanted = {account, f"demo-account-{account}"}
        found = sorted((k for k in self._keys if k["region"] == region and k["account"] in wanted), key=lambda k: k["key_id"])
        if not found:
            accounts = sorted({k["account"] for k in self._keys})
            raise ValueError(f"no key of account {account!r} in {region!r} (accounts: {', '.join(accounts)})")
        return str(found[0]["key"])

    # --- time, state ------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock, in epoch seconds."""
        return float(self._get("/__admin/clock")["now"])

    def advance(self, seconds: float) -> float:
        """Move the fake's clock forward (it stays frozen there); the new time."""
        return float(self._post("/__admin/clock/advance", {"seconds": seconds})["now"])

    def reset(self) -> None:
        """Empty the store, scenarios, usage and journal, and return the clock to real time."""
        self._post("/__admin/reset")

    # --- scenarios --------------------------------------------------------------------------------

    def scenario(self, effect: dict[str, Any], match: dict[str, Any] | None = None, times: int | None = None,
                 **more: Any) -> Scenario:
        """Add a scenario (an effect, what it matches, how many times; `name`, `id` or
        `only_when_chosen` as keywords) and return it; `with fake.scenario(...):` removes it after."""
        body: dict[str, Any] = {"effect": effect, **({"match": match} if match else {}),
                                **({"times": times} if times is not None else {}), **more}
        return Scenario(self, self._post("/__admin/scenarios", body))

    def scenarios(self) -> list[dict[str, Any]]:
        return list(self._get("/__admin/scenarios")["scenarios"])

    # --- what happened ----------------------------------------------------------------------------

    def requests(self, endpoint: str | None = None, *, region: str | None = None, status: int | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
        """The journal of API requests the fake received, oldest first: method, path, endpoint,
        region, status, request_id, headers (never a key) and body (parsed JSON)."""
        params = {name: value for name, value in (("endpoint", endpoint), ("region", region), ("status", status),
                                                 ("limit", limit)) if value is not None}
        return list(self._get("/__admin/requests", params)["requests"])

    def usage(self) -> list[dict[str, Any]]:
        """Images made and their cost, per account, region and model."""
        return list(self._get("/__admin/usage")["usage"])

    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        """Every account's tasks, newest first (filters: account, region, model, status, limit)."""
        return list(self._get("/__admin/tasks", {k: v for k, v in filters.items() if v is not None})["tasks"])

    # --- sending ----------------------------------------------------------------------------------

    def http_client(self, region: str | None = None, api_key: str | None = None) -> httpx.Client:
        """An httpx.Client on a region's base URL with a key of it (SDK 2.0 takes both from the
        client it is given): `dashscope.Client(http_client=fake.http_client())`. The pytest
        fixture's serves the fake in-process (no socket); otherwise it is a plain client."""
        options: dict[str, Any] = {"base_url": self.base_url_for(region or self.default_region), "timeout": DEFAULT_TIMEOUT,
                                   "headers": {"Authorization": f"Bearer {api_key or self.key(region)}"}}
        return self._http_client_factory(**options) if self._http_client_factory else httpx.Client(**options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AdminClient({self.url!r})"

    # --- the wire -----------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._answer(lambda: self._http.get(path, params=params))

    def _post(self, path: str, body: Any = None) -> Any:
        return self._answer(lambda: self._http.post(path, json=body))

    def _answer(self, send: Callable[[], httpx.Response]) -> Any:
        try:
            response = send()
        except httpx.TransportError as exc:
            raise AdminError(0, "Unreachable", f"the fake at {self.url} does not answer ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json()
