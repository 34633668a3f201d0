"""The suite's HTTP client: sends, records (keys masked), keeps to the budget and the rate
limits, and backs off on 429 instead of failing (on a fake with an admin clock, by moving the
clock; elsewhere by waiting)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import dashscope_schemas as ds
import httpx

from .exchange import Exchange, mask
from .settings import Settings
from .targets import Target
from .timing import TaskLog

BACKOFF = (1, 2, 5, 10, 30, 60)
# Requests that got no answer at all (refused, reset, timed out) before the run stops as NOT
# CHECKED: a target that went away mid-run would otherwise fail every remaining test slowly.
MAX_TRANSPORT_ERRORS = 3


class BudgetExhausted(Exception):
    """The next request would spend more than the run may: its test is skipped, not passed."""


class Budget:
    def __init__(self, images: int | None, usd: float | None, region: str, catalog: ds.Catalog):
        self.images_left, self.usd_left = images, usd
        self.limit_images, self.limit_usd = images, usd
        self.region, self.catalog = region, catalog
        self.spent_images, self.spent_usd = 0, 0.0
        self.cut = 0  # requests not sent because they would have gone over the budget

    def price(self, model: str) -> float:
        found = self.catalog.model(model)
        price = found.price_per_image.get(self.region) if found else None
        # No documented price: count the dearest documented one, to stay on the safe side.
        return price if price is not None else max(p for m in self.catalog.models.values()
                                                   for p in m.price_per_image.values() if p is not None)

    def reserve(self, model: str, images: int) -> None:
        cost = self.price(model) * images
        if self.images_left is not None and images > self.images_left:
            self.cut += 1
            raise BudgetExhausted(f"{images} more images would exceed the image budget ({self.spent_images} spent)")
        if self.usd_left is not None and cost > self.usd_left + 1e-9:
            self.cut += 1
            raise BudgetExhausted(f"${cost:.4f} more would exceed the money budget (${self.spent_usd:.4f} spent)")
        if self.images_left is not None:
            self.images_left -= images
        if self.usd_left is not None:
            self.usd_left -= cost
        self.spent_images += images
        self.spent_usd += cost


class Recorder:
    """Appends every exchange to <dir>/cassette.jsonl, keys masked."""

    def __init__(self, directory: Path | None, secrets: list[str]):
        self.path = directory / "cassette.jsonl" if directory else None
        self.secrets = secrets
        self._lock = threading.Lock()
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")

    def record(self, exchange: Exchange) -> None:
        if self.path is None:
            return
        line = json.dumps(exchange.to_record(self.secrets), ensure_ascii=False)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


class ContractClient:
    def __init__(self, target: Target, settings: Settings):
        self.target, self.settings = target, settings
        self.catalog = ds.load_catalog(settings.profile)
        secrets = [k for k in (target.api_key, target.other_account_key, target.other_region[1] if target.other_region else None) if k]
        self.secrets = secrets
        self.recorder = Recorder(settings.record_dir, secrets)
        self.budget = Budget(settings.budget_images, settings.budget_usd_for(target.kind), target.region, self.catalog)
        self._http = httpx.Client(timeout=120, follow_redirects=False)
        self._last_sent: dict[str, float] = {}
        self.sent = 0
        self.transport_errors = 0
        self.stopped_because: str | None = None  # why the run gave up (NOT CHECKED), if it did
        self.last_model: str | None = None
        self.tasks = TaskLog()  # each task's model, last status and times, for the report's "Tasks over time"

    # --- sending ---------------------------------------------------------------------------

    def _pace(self, model: str | None) -> None:
        """Against the real service, keep under the documented per-model rate (no bursts)."""
        if not self.target.real or not model or (entry := self.catalog.model(model)) is None:
            return
        limit = entry.rate_limit
        if not limit.requests:
            return
        interval = (60.0 if limit.per == "minute" else 1.0) / limit.requests
        wait = self._last_sent.get(model, 0.0) + interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # sleep-ok: pacing requests to a real server, not waiting for the fake
        self._last_sent[model] = time.monotonic()

    def _nudge_own_tasks(self) -> None:
        """Poll this key's unfinished tasks once: on a server whose tasks advance per poll (the
        fake's poll timing), tasks nobody polls would hold the concurrency limit for ever."""
        listing = self.send("GET", f"{self.target.base_url}/tasks", endpoint="task-list",
                            params={"page_no": 1, "page_size": 100}, retry_throttled=False)
        for task in (listing.json or {}).get("data") or [] if isinstance(listing.json, dict) else []:
            if task.get("status") in ("PENDING", "RUNNING") and task.get("task_id"):
                self.send("GET", f"{self.target.base_url}/tasks/{task['task_id']}", endpoint="task-query", retry_throttled=False)

    def _back_off(self, attempt: int) -> None:
        seconds = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        if self.target.admin is not None:
            self.target.admin.advance(seconds)  # the fake's buckets refill on its own clock
        else:
            time.sleep(seconds)  # sleep-ok: a real server's rate limit refills in real time

    def send(self, method: str, url: str, *, endpoint: str, body: Any = None, headers: dict[str, str] | None = None,
             key: str | None = "default", model: str | None = None, params: dict | None = None,
             retry_throttled: bool = True, raw_body: bytes | None = None) -> Exchange:
        request_headers = dict(headers or {})
        key_kind = "default" if key in ("default", self.target.api_key) else ("none" if key is None else "other")
        if key == "default":
            key = self.target.api_key
        if key is not None:
            request_headers["Authorization"] = f"Bearer {key}"
        if body is not None and raw_body is None:
            request_headers.setdefault("Content-Type", "application/json")
        for attempt in range(len(BACKOFF) + 1):
            self._pace(model)
            started = time.monotonic()
            try:
                response = self._http.request(method, url, headers=request_headers, params=params,
                                              content=raw_body if raw_body is not None
                                              else (json.dumps(body).encode() if body is not None else None))
            except httpx.TransportError as error:
                self._transport_error(url, error)
                raise
            exchange = self._exchange(method, str(response.request.url), endpoint, request_headers, body, response,
                                      time.monotonic() - started, model)
            exchange.notes["key"] = key_kind  # recordings mask every key alike; this says which kind was sent
            self.sent += 1
            self.recorder.record(exchange)
            self.tasks.observe(exchange)
            throttled = response.status_code == 429 and exchange.code == "Throttling.RateQuota"
            if not (throttled and retry_throttled) or attempt == len(BACKOFF):
                return exchange
            if endpoint in self.catalog.endpoints and self.catalog.endpoints[endpoint].is_async:
                self._nudge_own_tasks()
            self._back_off(attempt)
        return exchange

    def _transport_error(self, url: str, error: httpx.TransportError) -> None:
        """Count a request that got no answer; past MAX_TRANSPORT_ERRORS the run stops (exit 2)."""
        self.transport_errors += 1
        if self.transport_errors >= MAX_TRANSPORT_ERRORS:
            import pytest

            self.stopped_because = (f"{self.transport_errors} requests got no answer, the last {url.split('?')[0]}"
                                    f" ({type(error).__name__}: {str(error)[:120] or 'no detail'})")
            pytest.exit(self.stopped_because, returncode=pytest.ExitCode.INTERRUPTED)

    @staticmethod
    def _exchange(method, url, endpoint, headers, body, response: httpx.Response, elapsed, model) -> Exchange:
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("image/"):
            parsed: Any = {"bytes": len(response.content), "sha256": hashlib.sha256(response.content).hexdigest()}
        else:
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
        return Exchange(method=method, url=url, endpoint=endpoint, request_headers=headers, request_body=body,
                        status=response.status_code, response_headers=dict(response.headers), response_body=parsed,
                        elapsed=elapsed, model=model)

    # --- the API's verbs -------------------------------------------------------------------

    def generate(self, endpoint: str, body: Any, *, headers: dict[str, str] | None = None, key: str | None = "default",
                 base_url: str | None = None, spend: int = 0) -> Exchange:
        """POST a generation request; `spend` images are reserved from the budget first."""
        model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
        self.last_model = model
        if spend:
            self.budget.reserve(model or "", spend)
        path = self.catalog.endpoints[endpoint].path
        return self.send("POST", (base_url or self.target.base_url) + path, endpoint=endpoint, body=body,
                         headers=headers, key=key, model=model)

    def get_task(self, task_id: str, *, key: str | None = "default", base_url: str | None = None,
                 model: str | None = None) -> Exchange:
        return self.send("GET", f"{base_url or self.target.base_url}/tasks/{task_id}", endpoint="task-query", key=key, model=model)

    def cancel_task(self, task_id: str, *, key: str | None = "default") -> Exchange:
        return self.send("POST", f"{self.target.base_url}/tasks/{task_id}/cancel", endpoint="task-cancel", key=key)

    def list_tasks(self, params: dict | None = None, *, key: str | None = "default") -> Exchange:
        return self.send("GET", f"{self.target.base_url}/tasks", endpoint="task-list", key=key,
                         params=params or {"page_no": 1, "page_size": 10})

    def download(self, url: str) -> tuple[Exchange, bytes]:
        try:
            response = self._http.get(url)
        except httpx.TransportError as error:
            self._transport_error(url, error)
            raise
        exchange = self._exchange("GET", url, "download", {}, None, response, 0.0, None)
        self.recorder.record(exchange)
        return exchange, response.content

    def masked(self, text: str) -> str:
        return mask(text, self.secrets)

    def close(self) -> None:
        self._http.close()
        if self.target.admin is not None:
            self.target.admin.close()
