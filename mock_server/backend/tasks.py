"""The task API: polling, cancelling and listing tasks, the concurrency count of admission, and
writing back the status changes that come with time."""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dashscope_schemas import Catalog

from .. import parse
from ..accounts import ApiKey
from ..domain import tasks as domain
from ..domain.tasks import Task
from ..effects import Interruption
from ..errors import DashScopeError, invalid_parameter
from ..openapi import LIST_TIME_PATTERN, MAX_PAGE_NO, MAX_PAGE_SIZE
from ..store import TaskQuery
from .calls import Call, Outcome, caller, scenario_of

if TYPE_CHECKING:
    from ..service import FakeDashScope

# Task and result times are printed in the service's local time, China Standard Time, as in
# every example of the pages (no zone is written).
SERVICE_TZ = timezone(timedelta(hours=8))
LIST_STATUSES = (domain.PENDING, domain.RUNNING, domain.SUCCEEDED, domain.FAILED, domain.CANCELED)
_LIST_TIME = re.compile(LIST_TIME_PATTERN)
# Housekeeping in bounded batches: a request frees at most REQUEST_SWEEP expired records on its
# way (enough to keep up with what it adds), the background sweep SWEEP_BATCH between yields.
REQUEST_SWEEP = 64
SWEEP_BATCH = 500


_SERVICE_OFFSET = int(SERVICE_TZ.utcoffset(None).total_seconds())  # seconds ahead of UTC


def format_time(epoch: float) -> str:
    """YYYY-MM-DD HH:mm:ss.SSS in service time: what datetime.fromtimestamp(epoch, SERVICE_TZ)
    .strftime(...)[:-3] gives (microseconds rounded half to even, then cut to milliseconds), at
    a fraction of its cost."""
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:  # before 1970: modf's parts are both negative
        whole, micros = whole - 1, micros + 1_000_000
    return f"{_second(int(whole))}.{micros // 1000:03d}"


@lru_cache(maxsize=4096)  # the tasks of a second share it: strftime once a second, not per time shown
def _second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_second + _SERVICE_OFFSET))


def parse_list_time(text: str) -> float:
    """The task list's YYYYMMDDhhmmss, in service time. A day past the end of its month rolls
    over (20230230 is March 2), so every string of the documented pattern is a time."""
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:8])
    start = datetime(max(year, 1), month, 1, int(text[8:10]), int(text[10:12]), int(text[12:14]), tzinfo=SERVICE_TZ)
    return (start + timedelta(days=day - 1)).timestamp()


@dataclass(frozen=True)
class ListFilters:
    """The task list's filters, parsed; None or an infinite bound: not given."""

    model_name: str | None = None
    api_key_id: str | None = None
    region: str | None = None
    status: str | None = None
    start_time: float = -math.inf
    end_time: float = math.inf


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    total: int
    page_no: int
    page_size: int


def _page_param(catalog: Catalog, query: Mapping[str, str], name: str, default: int, maximum: int | None = None) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        return parse.decimal(text, low=1, high=maximum)
    except parse.BadInput:
        bound = f"between 1 and {maximum}" if maximum else "a positive integer"
        raise invalid_parameter(catalog, name, f"must be {bound}") from None


def _list_filters(catalog: Catalog, query: Mapping[str, str]) -> ListFilters:
    found: dict[str, Any] = {name: query[name] for name in ("model_name", "api_key_id", "region") if query.get(name)}
    if "status" in query:
        if query["status"] not in LIST_STATUSES:
            raise invalid_parameter(catalog, "status", f"must be one of {', '.join(LIST_STATUSES)}")
        found["status"] = query["status"]
    for name in ("start_time", "end_time"):
        if name in query:
            if not _LIST_TIME.fullmatch(query[name]):
                raise invalid_parameter(catalog, name, "must be YYYYMMDDhhmmss, e.g. 20230420000000")
            found[name] = parse_list_time(query[name])
    return ListFilters(**found)


class TaskBackend:
    """The task verbs of one FakeDashScope: query, cancel and list_page (one per call of the task
    API), and what generation and housekeeping need of tasks."""

    def __init__(self, service: FakeDashScope):
        self.service = service

    def _enter(self, call: Call, endpoint: str, task_id: str | None = None) -> tuple[ApiKey, Interruption | None]:
        """What every task-API call does first: who calls, the task API's own rate limit, the scenario."""
        key = caller(self.service, call)
        self.throttle(key)
        model = self.model_of(key, task_id) if task_id else None
        return key, scenario_of(self.service, call, endpoint, key, model=model)[1]

    def query(self, call: Call, task_id: str) -> Outcome[Task]:
        """GET /tasks/{id}: the task as it is now (a poll), or no value for an id the caller does not own."""
        key, interruption = self._enter(call, "task-query", task_id)
        if interruption is not None and interruption.stops:
            return Outcome(interruption=interruption)
        return Outcome(self.poll(key, task_id), interruption)

    def cancel_call(self, call: Call, task_id: str) -> Outcome[Task]:
        """POST /tasks/{id}/cancel."""
        key, interruption = self._enter(call, "task-cancel", task_id)
        if interruption is not None and interruption.stops:
            return Outcome(interruption=interruption)
        return Outcome(self.cancel(key, task_id), interruption)

    def list_page(self, call: Call) -> Outcome[TaskPage]:
        """GET /tasks: one page of the caller's tasks, its filters read from the query."""
        key, interruption = self._enter(call, "task-list")
        if interruption is not None and interruption.stops:
            return Outcome(interruption=interruption)
        catalog = self.service.catalog
        page_no = _page_param(catalog, call.query, "page_no", 1, MAX_PAGE_NO)
        page_size = _page_param(catalog, call.query, "page_size", 10, MAX_PAGE_SIZE)
        page, total = self.list(key, _list_filters(catalog, call.query), page_no, page_size)
        return Outcome(TaskPage(page, total, page_no, page_size), interruption)

    def active_count(self, key: ApiKey, model: str, now: float) -> int:
        """The caller's PENDING and RUNNING tasks of a model: two index counts, not a scan."""
        self.catch_up(now)
        alive = self._alive_from(now)
        return sum(self.service.store.query(TaskQuery(key.account, key.region, model=model, status=status, submitted_from=alive))[1]
                   for status in domain.ACTIVE)

    def _alive_from(self, now: float) -> float:
        """The earliest submit time of a task not yet expired at `now` (expired ones may still be
        stored until the sweep reaches them; queries leave them out by this bound)."""
        return math.nextafter(now - self.service.config.task_ttl, math.inf)

    def catch_up(self, now: float, limit: int | None = None) -> int:
        """Write back the tasks whose status changed with time, so status indexes are true at `now`."""
        done = 0
        while limit is None or done < limit:
            # One unit with a shared store (SQLite: no poll on another worker slips in between;
            # Redis: the store never writes a status back over a later one).
            with self.service.atomic():
                due = self.service.store.due(now, SWEEP_BATCH if limit is None else min(SWEEP_BATCH, limit - done))
                for task in due:
                    with contextlib.suppress(KeyError):  # expired meanwhile by another worker's sweep
                        self.service.store.update(domain.observe(task, now))
            if not due:
                break
            done += len(due)
        return done

    def _owned(self, key: ApiKey, task_id: str, now: float) -> Task | None:
        """The caller's task, or None: unknown, expired and other accounts' ids look the same."""
        self.service.store.expire(now, REQUEST_SWEEP)
        task = self.service.store.get(task_id)
        if task is None or (task.account, task.region) != (key.account, key.region):
            return None
        if domain.is_expired(task, now, self.service.config.task_ttl):
            return None
        return task

    def model_of(self, key: ApiKey, task_id: str) -> str | None:
        """The model of the caller's task (for scenario matching), without polling it."""
        task = self._owned(key, task_id, self.service.clock.now())
        return task.model if task else None

    def poll(self, key: ApiKey, task_id: str) -> Task | None:
        with self.service.atomic(key.account):  # a poll count is exact across workers
            return self._poll(key, task_id)

    def _poll(self, key: ApiKey, task_id: str) -> Task | None:
        now = self.service.clock.now()
        task = self._owned(key, task_id, now)
        if task is None:
            return None
        observed = domain.observe(task, now, poll=True)
        if observed is not task:
            try:
                self.service.store.update(observed)
            except KeyError:  # expired meanwhile by another worker's sweep
                return None
        return observed

    def cancel(self, key: ApiKey, task_id: str) -> Task:
        with self.service.atomic(key.account):  # no poll on another worker between the look and the cancel
            return self._cancel(key, task_id)

    def _cancel(self, key: ApiKey, task_id: str) -> Task:
        now = self.service.clock.now()
        task = self._owned(key, task_id, now)
        if task is None:
            raise DashScopeError.from_catalog(self.service.catalog, "unsupported_operation")
        try:
            canceled = domain.cancel(task, now)
        except domain.NotCancelable:
            raise DashScopeError.from_catalog(self.service.catalog, "unsupported_operation") from None
        try:
            self.service.store.update(canceled)
        except KeyError:  # expired meanwhile by another worker's sweep
            raise DashScopeError.from_catalog(self.service.catalog, "unsupported_operation") from None
        model = self.service.catalog.model(task.model)
        if model is not None:
            price = model.price_per_image.get(key.region)
            self.service.ledger.refund(key.account, key.region, model.name, task.succeeded_if_finished, price)
        return canceled

    def overview(self, *, account: str | None = None, region: str | None = None, model: str | None = None,
                 status: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[Task], int]:
        """Every account's tasks (the control API's view, not a caller's), newest first, and how
        many match: each account and region's index read up to the page's end and merged, so the
        cost is that of the page times the accounts, whatever the number of stored tasks."""
        now = self.service.clock.now()
        self.catch_up(now)
        owners = sorted({(k.account, k.region) for k in self.service.keys.all()
                         if account in (None, k.account) and region in (None, k.region)})
        found: list[Task] = []
        total = 0
        for owner_account, owner_region in owners:
            query = TaskQuery(owner_account, owner_region, model=model, status=status, submitted_from=self._alive_from(now))
            page, count = self.service.store.query(query, 0, offset + limit)
            found += page
            total += count
        found.sort(key=lambda t: t.submit_time, reverse=True)
        return [domain.observe(t, now) for t in found[offset:offset + limit]], total

    def throttle(self, key: ApiKey) -> None:
        """The task API's own limit: so many queries per second per account [async]."""
        per_second = self.service.config.rate_limits.get("task_api_per_second")
        if self.service.config.rate_limits.get("enabled", True) and per_second and not self.service.limiter.allow(
                ("task-api", key.account), per_second, "second", self.service.clock.now()):
            raise DashScopeError.from_catalog(self.service.catalog, "rate_quota")

    def list(self, key: ApiKey, filters: ListFilters, page_no: int, page_size: int) -> tuple[list[Task], int]:
        """One page of the caller's tasks, newest first, and how many match: from the store's
        indexes, so the cost is that of the page, whatever the number of stored tasks."""
        now = self.service.clock.now()
        self.service.store.expire(now, REQUEST_SWEEP)
        if filters.region is not None and filters.region != key.region:
            return [], 0  # a key sees its own region's tasks only
        if filters.status is not None:
            self.catch_up(now)
        query = TaskQuery(key.account, key.region, model=filters.model_name, api_key_id=filters.api_key_id,
                          status=filters.status, submitted_from=max(filters.start_time, self._alive_from(now)),
                          submitted_to=filters.end_time)
        page, total = self.service.store.query(query, (page_no - 1) * page_size, page_size)
        return [domain.observe(t, now) for t in page], total
