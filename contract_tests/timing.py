"""Tasks over time: the status moves each model's tasks made, how long they queued and ran, judged
against the documented state machine and compared with a fake's timing configuration.

Pure: everything here reads exchanges (live, or loaded from a cassette) and configuration data;
nothing talks to a server. TaskLog is the one accumulator: the client feeds it every exchange and
it keeps, per task, its model, its last status and three time strings, and per model the moves
counted, so a long run costs little memory.

What the times mean. A task answer prints submit_time, scheduled_time (it left the queue) and
end_time; queue = scheduled - submit, run = end - scheduled. On the real service they are real
durations. The fake in "time" mode prints scheduled = submit + pending and end = scheduled +
running on its clock, exactly, however the suite moves that clock: its durations are its
configuration (plus any latency scenario). In "polls" mode it prints the clock at the poll that
moved the task, which measures the suite's polling, not a phase: such models are not judged.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from .checks import FORWARD
from .exchange import Exchange

UNKNOWN = "UNKNOWN"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")
FINISHED = ("SUCCEEDED", "FAILED")  # ran to the end: the run phase has a length (a cancelled task never ran)
UNKNOWN_MODEL = "(unknown model)"
# Every move between two answers about one task that the docs allow: forward along the state
# machine (a poll may skip RUNNING), staying put, and terminal statuses stick. UNKNOWN is not a
# step of a task's life (what an expired id or another account's task shows), so it is left out.
DOCUMENTED: dict[str, frozenset[str]] = {
    **{before: frozenset(after) for before, after in FORWARD.items()},
    **{status: frozenset({status}) for status in TERMINAL},
}
# phase -> (the time it starts at, the time it ends at, the fake's timing key for its length)
PHASES = {"queue": ("submit_time", "scheduled_time", "pending"), "run": ("scheduled_time", "end_time", "running")}
TIME_FIELDS = ("submit_time", "scheduled_time", "end_time")
# The service prints "2024-03-02 22:22:13.026", and some end times without milliseconds
# (observation task-times-without-millis).
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
# A median further than this from the configured length is worth a note: 1 s absorbs an end_time
# printed in whole seconds and the fake's millisecond truncation; a quarter of the phase is the
# spread a real queue shows between runs without anything having changed.
TOLERANCE_SECONDS = 1.0
TOLERANCE_FRACTION = 0.25
STATISTIC = "median"


def parse_service_time(text: Any) -> datetime | None:
    """A task time as the service prints it, with or without milliseconds; None if it is not one."""
    if not isinstance(text, str):
        return None
    for pattern in _TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def seconds_between(start: Any, end: Any) -> float | None:
    began, ended = parse_service_time(start), parse_service_time(end)
    return (ended - began).total_seconds() if began and ended else None


# --- reading answers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskAnswer:
    """What one answer says about a task: its id, status and the times it printed."""

    task_id: str
    status: str
    times: dict[str, str]


def task_answer(exchange: Exchange) -> TaskAnswer | None:
    """The task an answer is about: a creation (an async generation's 200) or a poll (task-query);
    None for anything else, and for what another key was shown (another account sees UNKNOWN)."""
    if exchange.status != 200 or exchange.endpoint in ("task-cancel", "task-list", "download"):
        return None
    if exchange.notes.get("key", "default") != "default":
        return None
    output = exchange.json.get("output") if isinstance(exchange.json, dict) else None
    if not isinstance(output, dict):
        return None
    task_id, status = output.get("task_id"), output.get("task_status")
    if not isinstance(task_id, str) or not isinstance(status, str):
        return None
    times = {name: output[name] for name in TIME_FIELDS if isinstance(output.get(name), str)}
    return TaskAnswer(task_id, status, times)


def model_of(exchange: Exchange) -> str | None:
    if exchange.model:
        return exchange.model
    body = exchange.request_body
    return body["model"] if isinstance(body, dict) and isinstance(body.get("model"), str) else None


@dataclass
class TaskSeen:
    model: str
    status: str
    times: dict[str, str]


@dataclass
class TaskLog:
    """Per task what the run saw last, per model the moves between consecutive answers."""

    tasks: dict[str, TaskSeen] = field(default_factory=dict)
    moves: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    # (model, before, after) -> the first answer that showed an undocumented move: the evidence.
    forbidden: dict[tuple[str, str, str], Exchange] = field(default_factory=dict)
    # model -> the last answer that printed the most times (end_time too, if any did): what a timing note points at.
    example: dict[str, Exchange] = field(default_factory=dict)

    def observe(self, exchange: Exchange) -> None:
        answer = task_answer(exchange)
        if answer is None or answer.status == UNKNOWN:
            return
        seen = self.tasks.get(answer.task_id)
        if seen is None:
            seen = self.tasks[answer.task_id] = TaskSeen(model_of(exchange) or UNKNOWN_MODEL, answer.status, dict(answer.times))
            self.moves.setdefault(seen.model, Counter())
        else:
            move = (seen.status, answer.status)
            self.moves.setdefault(seen.model, Counter())[move] += 1
            if not documented(*move):
                self.forbidden.setdefault((seen.model, *move), replace(exchange, model=seen.model))
            seen.status = answer.status
            seen.times.update(answer.times)
        if "scheduled_time" in answer.times and ("end_time" in answer.times or seen.model not in self.example):
            self.example[seen.model] = replace(exchange, model=seen.model)

    @classmethod
    def of(cls, exchanges: Iterable[Exchange]) -> TaskLog:
        log = cls()
        for exchange in exchanges:
            log.observe(exchange)
        return log


def documented(before: str, after: str) -> bool:
    return after in DOCUMENTED.get(before, frozenset())


def durations(log: TaskLog) -> dict[str, dict[str, list[float]]]:
    """model -> phase -> the seconds each task spent in it. Queue: every task whose answers gave
    submit and scheduled times (a RUNNING answer does); run: tasks that finished (SUCCEEDED or
    FAILED) with scheduled and end times."""
    found: dict[str, dict[str, list[float]]] = {}
    for task in log.tasks.values():
        phases = found.setdefault(task.model, {phase: [] for phase in PHASES})
        for phase, (start, end, _) in PHASES.items():
            if phase == "run" and task.status not in FINISHED:
                continue
            seconds = seconds_between(task.times.get(start), task.times.get(end))
            if seconds is not None:
                phases[phase].append(seconds)
    return found


# --- statistics and judgements -------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseStats:
    count: int
    min: float
    median: float
    p90: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> PhaseStats | None:
        if not values:
            return None
        ordered = sorted(values)
        p90 = ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank: a value some task really took
        return cls(len(ordered), round(ordered[0], 3), round(statistics.median(ordered), 3), round(p90, 3), round(ordered[-1], 3))


@dataclass(frozen=True)
class Judgement:
    phase: str
    configured: float | None  # seconds the fake is configured for; None when it counts polls
    observed: float | None    # the median seen
    verdict: str              # "agrees", "differs" or "not judged"
    why: str                  # the difference in seconds, or why it was not judged

    @property
    def differs(self) -> bool:
        return self.verdict == "differs"


@dataclass(frozen=True)
class Move:
    before: str
    after: str
    count: int
    documented: bool


@dataclass(frozen=True)
class ModelTiming:
    model: str
    tasks: int
    moves: list[Move]
    phases: dict[str, PhaseStats | None]
    configured: dict[str, Any]
    judgements: list[Judgement]


@dataclass(frozen=True)
class TimingSummary:
    config_source: str  # where the configured timing came from
    min_tasks: int      # fewer tasks in a phase than this: not judged
    models: list[ModelTiming]
    statistic: str = STATISTIC
    tolerance: dict[str, float] = field(default_factory=lambda: {"seconds": TOLERANCE_SECONDS, "fraction": TOLERANCE_FRACTION})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def timing_for(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The fake's timing entry for a model: its own, else the default (as Config.timing_for)."""
    entry = (config.get("models") or {}).get(model) or config.get("default") or {}
    return dict(entry)


def tolerance(configured: float) -> float:
    return max(TOLERANCE_SECONDS, TOLERANCE_FRACTION * configured)


def judge(phase: str, seconds: list[float], entry: Mapping[str, Any], min_tasks: int) -> Judgement:
    """The median of a phase against the configured length, when both mean seconds."""
    observed = round(statistics.median(seconds), 3) if seconds else None
    if entry.get("mode", "time") != "time":
        return Judgement(phase, None, observed, "not judged",
                         "the fake's timing for this model counts polls: its times say when the suite polled, not how long a phase is")
    configured = float(entry.get(PHASES[phase][2], 0))
    if observed is None or len(seconds) < min_tasks:
        return Judgement(phase, configured, observed, "not judged",
                         f"{len(seconds)} task(s) showed this phase, {min_tasks} needed")
    difference = observed - configured
    verdict = "differs" if abs(difference) > tolerance(configured) else "agrees"
    return Judgement(phase, configured, observed, verdict, f"{difference:+.1f} s")


def _rank(status: str) -> tuple[int, str]:
    """Statuses in the order of a task's life (then any the docs do not have, by name)."""
    order = ("PENDING", "RUNNING", *TERMINAL)
    return (order.index(status) if status in order else len(order), status)


def summarize(log: TaskLog, config: Mapping[str, Any], *, source: str, min_tasks: int = 1) -> TimingSummary:
    """Per model: moves with counts, phase statistics, and each phase judged against `config`
    (the fake's "timing" object: {"default": {...}, "models": {...}})."""
    seconds = durations(log)
    tasks = Counter(task.model for task in log.tasks.values())
    models = []
    for model in sorted(log.moves):
        entry = timing_for(config, model)
        moves = [Move(before, after, count, documented(before, after))
                 for (before, after), count in sorted(log.moves[model].items(), key=lambda item: (_rank(item[0][0]), _rank(item[0][1])))]
        phases = {phase: PhaseStats.of(values) for phase, values in seconds[model].items()}
        judgements = [judge(phase, values, entry, min_tasks) for phase, values in seconds[model].items()]
        models.append(ModelTiming(model, tasks[model], moves, phases, entry, judgements))
    return TimingSummary(source, min_tasks, models)


# --- findings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A finding for Reporter.failed: what the tasks showed that the contract or the fake's
    configuration did not say."""

    check: str
    severity: str
    exchange: Exchange | None
    field: str
    message: str
    expected: Any
    actual: Any


FIELD_OF_PHASE = {"queue": "queue time (scheduled_time - submit_time)", "run": "run time (end_time - scheduled_time)"}


def notes(log: TaskLog, summary: TimingSummary) -> list[Note]:
    """Breaking: a move the state machine does not have. Info: a phase whose median differs from
    the fake's configured length by more than the tolerance."""
    found = [Note("state_graph", "breaking", exchange, "output.task_status",
                  f"{model}: {before} -> {after} is not a move of the documented task state machine",
                  sorted(DOCUMENTED.get(before, frozenset())), after)
             for (model, before, after), exchange in sorted(log.forbidden.items(), key=lambda item: item[0])]
    for model in summary.models:
        for judged in model.judgements:
            if not judged.differs or judged.configured is None or judged.observed is None:
                continue
            stats = model.phases[judged.phase]
            did = "queued" if judged.phase == "queue" else "ran"
            found.append(Note("timing_drift", "info", log.example.get(model.model), FIELD_OF_PHASE[judged.phase],
                              f"{model.model}: tasks {did} {judged.observed:g} s ({STATISTIC} of {stats.count if stats else 0}),"
                              f" the fake is configured for {judged.configured:g} s ({judged.why})",
                              f"{judged.configured:g} s ± {tolerance(judged.configured):g} s", f"{judged.observed:g} s"))
    return found
