"""The async task state machine: PENDING -> RUNNING -> SUCCEEDED | FAILED, CANCELED, expiry.

Pure: every function takes the current time and returns a new Task; nothing here reads a
clock, a store or a request. A task's phase lengths come from its Timing, fixed at creation:
by clock time (seconds), or by number of polls of GET /tasks/{id}.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, UNKNOWN = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED})
ACTIVE = (PENDING, RUNNING)  # what counts against a concurrency limit
# The only moves a task makes; anything else is a bug (the contract suite checks the same).
TRANSITIONS = {PENDING: {RUNNING, CANCELED, SUCCEEDED, FAILED}, RUNNING: {SUCCEEDED, FAILED}}


# Slots on the records a store keeps by the million: no per-instance dict (a Task is 200 bytes,
# not 700), and so a task within the 1 KB the store's budget gives it (bench/bench_memory.py).
@dataclass(frozen=True, slots=True)
class Timing:
    mode: Literal["time", "polls"]
    pending: float  # seconds (time) or polls (polls) spent PENDING
    running: float  # seconds or polls spent RUNNING

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Timing:
        mode = data.get("mode", "time")
        if mode not in ("time", "polls"):
            raise ValueError(f"timing mode must be 'time' or 'polls', not {mode!r}")
        pending, running = float(data.get("pending", 0)), float(data.get("running", 0))
        if pending < 0 or running < 0:
            raise ValueError("timing phases cannot be negative")
        timing = cls(mode, pending, running)
        return _TIMINGS.setdefault(timing, timing) if len(_TIMINGS) < 1024 else timing  # one shared per configured timing


_TIMINGS: dict[Timing, Timing] = {}

_EXTEND_SUFFIX = ". Rendered with rich detail, balanced composition and natural light."


def actual_prompt(prompt: str, prompt_extend: bool) -> str:
    """The prompt the model used: 'rewritten' when prompt_extend is on (the fake appends a
    sentence, the same one every time, so the result is made again from the prompt alone)."""
    return prompt.rstrip(". ") + _EXTEND_SUFFIX if prompt_extend else prompt


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    """What becomes of one requested image: a result image, or a per-image error."""

    image_id: str | None
    code: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None


@dataclass(frozen=True, slots=True)
class Task:
    task_id: str
    account: str
    region: str
    api_key_id: str
    model: str
    endpoint: str
    orig_prompt: str       # as the service keeps it: truncated at the model's limit
    prompt_extend: bool    # whether the model "rewrote" it (actual_prompt), kept as a flag, not a second text
    seed: int
    width: int
    height: int
    timing: Timing
    outcomes: tuple[ImageOutcome, ...]      # planned at creation, shown when the task ends
    failure: tuple[str, str] | None = None  # (code, message) of a task that FAILS as a whole
    status: str = PENDING
    submit_time: float = 0.0
    scheduled_time: float | None = None
    end_time: float | None = None
    polls: int = 0
    request_id: str = ""  # of the answer that created it (the task list shows it)

    @property
    def actual_prompt(self) -> str:
        return actual_prompt(self.orig_prompt, self.prompt_extend)

    @property
    def final_status(self) -> str:
        return SUCCEEDED if self.failure is None and any(o.ok for o in self.outcomes) else FAILED

    @property
    def succeeded_if_finished(self) -> int:
        """Images this task makes if it runs to the end (its outcome is fixed at creation)."""
        return sum(o.ok for o in self.outcomes) if self.final_status == SUCCEEDED else 0

    @property
    def succeeded_count(self) -> int:
        return sum(o.ok for o in self.outcomes) if self.status == SUCCEEDED else 0


_TASK_FIELDS = tuple(f.name for f in fields(Task))


def _changed(task: Task, **changes: Any) -> Task:
    """dataclasses.replace for a Task, at half its cost (it is called on every poll that moves a
    task): a new Task holding the same values but `changes`. Task has no __post_init__, so
    bypassing __init__ skips nothing."""
    new = object.__new__(Task)
    for name in _TASK_FIELDS:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(task, name))
    return new


def create(task: Task, now: float) -> Task:
    """A new task, submitted now and PENDING (the task itself when it was built so)."""
    if (task.status, task.submit_time, task.scheduled_time, task.end_time, task.polls) == (PENDING, now, None, None, 0):
        return task
    return _changed(task, status=PENDING, submit_time=now, scheduled_time=None, end_time=None, polls=0)


def expires_at(task: Task, ttl: float) -> float:
    return task.submit_time + ttl


def is_expired(task: Task, now: float, ttl: float) -> bool:
    return now >= expires_at(task, ttl)


def next_change(task: Task) -> float | None:
    """When the task's status next changes by itself (clock time), if it ever does: poll-timed
    and finished tasks change only when something happens to them (a poll, a cancel)."""
    if task.status in TERMINAL or task.timing.mode != "time":
        return None
    scheduled = task.submit_time + task.timing.pending
    return scheduled if task.status == PENDING else scheduled + task.timing.running


def observe(task: Task, now: float, *, poll: bool = False) -> Task:
    """The task as it is at `now`. A poll (GET /tasks/{id}) counts towards poll-based timing.
    The same object when nothing changed (callers test `is`, not a 20-field comparison)."""
    if task.status in TERMINAL:
        return task
    if task.timing.mode == "polls":
        polls = task.polls + 1 if poll else task.polls
        if polls == 0 or polls <= task.timing.pending:
            return _changed(task, polls=polls) if polls != task.polls else task
        scheduled = task.scheduled_time if task.scheduled_time is not None else now
        if polls <= task.timing.pending + task.timing.running:
            return _changed(task, polls=polls, status=RUNNING, scheduled_time=scheduled)
        return _changed(task, polls=polls, status=task.final_status, scheduled_time=scheduled, end_time=now)
    # A phase of no length reuses the time it starts at: one float fewer per task kept.
    scheduled = task.submit_time + task.timing.pending if task.timing.pending else task.submit_time
    ended = scheduled + task.timing.running if task.timing.running else scheduled
    if now < scheduled:
        return task
    if now < ended:
        return task if task.status == RUNNING else _changed(task, status=RUNNING, scheduled_time=scheduled)
    return _changed(task, status=task.final_status, scheduled_time=scheduled, end_time=ended)


class NotCancelable(Exception):
    """Only PENDING tasks can be cancelled."""


def cancel(task: Task, now: float) -> Task:
    task = observe(task, now)
    if task.status != PENDING:
        raise NotCancelable(task.status)
    return _changed(task, status=CANCELED, end_time=now)
