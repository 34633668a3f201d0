"""The task API: polling, cancelling and listing tasks, the concurrency count of admission, and
writing back the status changes that come with time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..accounts import ApiKey
from ..domain import tasks as domain
from ..domain.tasks import Task
from ..errors import DashScopeError
from ..store import TaskQuery

if TYPE_CHECKING:
    from ..service import FakeDashScope

# Task and result times are printed in the service's local time, China Standard Time, as in
# every example of the pages (no zone is written).
SERVICE_TZ = timezone(timedelta(hours=8))
# Housekeeping in bounded batches: a request frees at most REQUEST_SWEEP expired records on its
# way (enough to keep up with what it adds), the background sweep SWEEP_BATCH between yields.
REQUEST_SWEEP = 64
SWEEP_BATCH = 500
def format_time(epoch: float) -> str:
    """YYYY-MM-DD HH:mm:ss.SSS"""
    return datetime.fromtimestamp(epoch, SERVICE_TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


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


class TaskBackend:
    """The task verbs of one FakeDashScope."""

    def __init__(self, service: FakeDashScope):
        self.service = service

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
            due = self.service.store.due(now, SWEEP_BATCH if limit is None else min(SWEEP_BATCH, limit - done))
            if not due:
                break
            for task in due:
                self.service.store.update(domain.observe(task, now))
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
        now = self.service.clock.now()
        task = self._owned(key, task_id, now)
        if task is None:
            return None
        observed = domain.observe(task, now, poll=True)
        if observed != task:
            self.service.store.update(observed)
        return observed

    def cancel(self, key: ApiKey, task_id: str) -> Task:
        now = self.service.clock.now()
        task = self._owned(key, task_id, now)
        if task is None:
            raise DashScopeError.from_catalog(self.service.catalog, "unsupported_operation")
        try:
            canceled = domain.cancel(task, now)
        except domain.NotCancelable:
            raise DashScopeError.from_catalog(self.service.catalog, "unsupported_operation") from None
        self.service.store.update(canceled)
        model = self.service.catalog.model(task.model)
        if model is not None:
            price = model.price_per_image.get(key.region)
            self.service.ledger.refund(key.account, key.region, model.name, task.succeeded_if_finished, price)
        return canceled

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
