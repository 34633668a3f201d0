"""What the dashboard shows, read from a FakeDashScope into plain values: no HTML here
(render.py), no HTTP beyond the base URL and the route names the caller passes in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..api.tasks import task_output
from ..backend.tasks import LIST_STATUSES, format_time
from ..clock import ControllableClock
from ..domain.tasks import ACTIVE, CANCELED, TERMINAL, Task
from ..effects import scenario_validator
from ..journal import Entry, secrets_of
from ..service import FakeDashScope
from .query import Filters

SYNC_CALLS_SHOWN = 20


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float | None  # None: a final status, a moment rather than a span


@dataclass(frozen=True)
class TaskRow:
    task: Task
    output: dict[str, Any]  # what GET /tasks/{id} shows of it now, result URLs included
    timeline: list[Phase]


@dataclass(frozen=True)
class TaskPage:
    rows: list[TaskRow]
    total: int
    pages: int


@dataclass(frozen=True)
class Clock:
    now: float
    service_time: str
    frozen: bool
    movable: bool  # a ControllableClock (the buttons can move it)


@dataclass(frozen=True)
class View:
    front: dict[str, Any]            # pages.front: version, profile, regions and their base URLs
    filters: Filters
    clock: Clock
    keys: list[dict[str, str]]       # account, region, key_id, and the key itself: render masks it unless asked
    accounts: list[str]
    models: list[str]
    statuses: list[str]
    tasks: TaskPage
    active: int                      # PENDING and RUNNING tasks of every account: the page refreshes while any
    sync_calls: list[dict[str, Any]]  # journal entries of the synchronous endpoints, newest first, with "results"
    scenarios: list[dict[str, Any]]
    scenario_schema: Mapping[str, Any]  # what the form to add one is made from
    usage: list[dict[str, Any]]
    free_tier_only: list[str]


def timeline(task: Task, now: float) -> list[Phase]:
    """The phases a task went through up to `now`: how long PENDING, then RUNNING, then where it ended."""
    end = task.end_time if task.end_time is not None else now
    if task.status == CANCELED:
        return [Phase("PENDING", end - task.submit_time), Phase(CANCELED, None)]
    phases = [Phase("PENDING", (task.scheduled_time if task.scheduled_time is not None else end) - task.submit_time)]
    if task.scheduled_time is not None:
        phases.append(Phase("RUNNING", end - task.scheduled_time))
    if task.status in TERMINAL:
        phases.append(Phase(task.status, None))
    return phases


def _clock(service: FakeDashScope) -> Clock:
    now = service.clock.now()
    return Clock(now, format_time(now), bool(getattr(service.clock, "frozen", False)),
                 isinstance(service.clock, ControllableClock))


def _tasks(service: FakeDashScope, filters: Filters, base: str) -> TaskPage:
    """One page of tasks, newest first, from the store's indexes (service.tasks.overview)."""
    page, total = service.tasks.overview(account=filters.account, region=filters.region, model=filters.model,
                                         status=filters.status, offset=filters.offset, limit=filters.page_size)
    now = service.clock.now()
    rows = [TaskRow(task, task_output(service, task, base), timeline(task, now)) for task in page]
    return TaskPage(rows, total, -(-total // filters.page_size))


def _active(service: FakeDashScope) -> int:
    return sum(service.tasks.overview(status=status, limit=0)[1] for status in ACTIVE)


def _sync_calls(service: FakeDashScope, name_of: Callable[[Entry], str | None]) -> list[dict[str, Any]]:
    """The last calls of the synchronous generation endpoints, newest first, keys masked."""
    found: list[dict[str, Any]] = []
    for name, endpoint in service.catalog.endpoints.items():
        if endpoint.generates and not endpoint.is_async:
            found += service.journal.read(name_of, secrets_of(service), endpoint=name, limit=SYNC_CALLS_SHOWN,
                                          with_results=True)["requests"]
    return sorted(found, key=lambda entry: entry["id"], reverse=True)[:SYNC_CALLS_SHOWN]


def _scenario_schema(service: FakeDashScope) -> Mapping[str, Any]:
    schema = scenario_validator(service.config.profile).schema  # built once per profile
    assert isinstance(schema, Mapping)  # effects.scenario_schema is an object schema
    return schema


def gather(service: FakeDashScope, front: dict[str, Any], filters: Filters, base: str,
           name_of: Callable[[Entry], str | None]) -> View:
    """Everything the dashboard shows. `base`: the URL the browser reached the fake by (result
    URLs are signed for it, as the API signs them for its caller); `name_of`: the journal's
    route names (journal.route_namer of the app)."""
    return View(
        front=front, filters=filters, clock=_clock(service),
        keys=[{"account": k.account, "region": k.region, "key_id": k.key_id, "key": k.key} for k in service.keys.all()],
        accounts=sorted({k.account for k in service.keys.all()}), models=list(service.catalog.models),
        statuses=list(LIST_STATUSES),
        tasks=_tasks(service, filters, base), active=_active(service), sync_calls=_sync_calls(service, name_of),
        scenarios=[s.to_dict() for s in service.scenarios.all()],
        scenario_schema=_scenario_schema(service),
        usage=service.usage(), free_tier_only=sorted(service.ledger.free_tier_only),
    )
