"""The async task API as a state machine: Hypothesis creates, polls and cancels tasks, polls
ids that do not exist or belong to another account, and (on a fake with the admin API) moves
the clock, sometimes past the 24-hour lifetime, and plants one-shot failure and latency
scenarios. Every answer goes through contract.verify, so each property appears in the drift
report under its check's name:

- valid_request_accepted: a valid, cheap creation request is accepted (a 429 that persists
  through the client's back-off while the account runs as many tasks of the model as the docs
  allow at once is not held against the target);
- usage_agrees_with_results: every SUCCEEDED/FAILED poll has task_metrics, usage and results
  that agree (and as many results as n asked for);
- status_moves_forward (invariant, checked after every poll): each task's statuses, in the
  order seen, only move PENDING -> RUNNING -> SUCCEEDED | FAILED (or PENDING -> CANCELED), and
  terminal ones stick; an UNKNOWN before 24 h counts as a move, and fails;
- cancel_only_pending: a cancel right after a poll succeeds if and only if that poll said PENDING;
- expired_task_is_unknown (invariant, on a fake): a task polled 24 h or more (by the fake's
  clock) after its creation answers UNKNOWN, without its data;
- other_account_cannot_see: another account's key sees the task exactly as an unknown id, and
  never lists it;
- unknown_task_is_unknown: an id nobody issued answers 200 UNKNOWN.

Each run ends (teardown) by checking all its tasks at once: another account sees none of them,
and on a fake, once all have ended, two polls in a row agree, and a day later all are UNKNOWN;
so those properties are checked in every run, not only when the drawn steps happen to reach them.

Against a target without the admin API (the real service) the machine is tiny: two runs of a
few steps, no clock or scenario rules, at most REAL_MAX_TASKS tasks and never past the budget.
It never sleeps: on a fake, time is the fake's clock.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from .client import BudgetExhausted
from .exchange import Exchange
from .flow import status_of
from .requests import body_for, headers_for, oracle, sample_image
from .stateful_plan import (
    ALL_ENDED,
    ASYNC_ENDPOINTS,
    CANCEL_AGES,
    CHOICE,
    CLOCK_MOVES,
    EDGE,
    EFFECTS,
    FAKE_EXAMPLES,
    FAKE_STEPS,
    IMAGE,
    PROMPT,
    REAL_EXAMPLES,
    REAL_MAX_TASKS,
    REAL_STEPS,
    SHORT_MOVES,
    TASK_TTL,
    N,
    Tracked,
    async_choices,
)


class TaskMachine(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self, contract, shared: dict):
        super().__init__()
        self.contract, self.client, self.shared = contract, contract.client, shared
        self.admin = contract.target.admin
        self.other_key = contract.target.other_account_key
        self.choices = async_choices(contract)
        self.known: list[Tracked] = []
        self.scenarios: dict[str, str] = {}     # scenario id -> endpoint, live until a creation there takes it
        self.exhausted = False
        self.failed = False

    # --- helpers ---------------------------------------------------------------------------

    def verify(self, exchange, *names, **kwargs) -> None:
        """contract.verify, remembering a failure (so that teardown does not bury it)."""
        try:
            self.contract.verify(exchange, *names, **kwargs)
        except AssertionError:
            self.failed = True
            raise

    def now(self) -> float | None:
        return self.admin.now() if self.admin is not None else None

    def active(self, model: str) -> list[Tracked]:
        """This run's tasks of the model that were PENDING or RUNNING when last seen."""
        return [t for t in self.known if t.model == model and not t.expired and t.history[-1] in ("PENDING", "RUNNING")]

    def running_on_server(self, model: str) -> int:
        """How many tasks of the model the account has PENDING or RUNNING, by the task list."""
        count = 0
        for status in ("PENDING", "RUNNING"):
            answer = self.client.list_tasks({"page_no": 1, "page_size": 10, "model_name": model, "status": status})
            self.verify(answer)
            total = (answer.json or {}).get("total") if answer.status == 200 else None
            count += total if isinstance(total, int) else 0
        return count

    def poll(self, task: Tracked) -> tuple[Exchange, str | None]:
        """GET the task, verify the answer, and add what it shows to the task's history."""
        before = self.now()
        answer = self.client.get_task(task.task_id)
        after = self.now()
        answer.model = task.model
        status = status_of(answer)
        note(f"poll {task.task_id}: HTTP {answer.status} {status}")
        # The clock readings (before, after, created_*) are None exactly when there is no admin API.
        if before is not None and task.created_before is not None and before - task.created_before >= TASK_TTL + EDGE:
            # At least 24 h after creation even if it was submitted at the last moment.
            self.verify(answer, "expired_task_is_unknown")
            task.expired = True
            event("poll: expired")
            return answer, status
        # Without the admin API a run never lasts 24 h; on a fake the poll may straddle the
        # 24-hour mark when the client's 429 back-off moved the clock: then it says nothing.
        alive = after is None or task.created_after is None or after - task.created_after < TASK_TTL - EDGE
        event(f"poll: {status}")
        self.verify(answer, "usage_agrees_with_results", expect=task.expect)
        if alive and answer.status == 200 and status:
            task.history.append(status)
            task.last, task.unchecked = answer, True
            # At once, not only after the step: a cancel that follows this poll relies on it.
            self.statuses_move_forward()
        return answer, status

    # --- rules -----------------------------------------------------------------------------

    def can_create(self) -> bool:
        if self.exhausted or not self.choices:
            return False
        return self.admin is not None or self.shared["created"] < REAL_MAX_TASKS

    @initialize(target=tasks, choice=CHOICE, n=N, prompt=PROMPT, image=IMAGE, effect=st.none() | EFFECTS)
    def first_task(self, choice, n, prompt, image, effect):
        """Every run starts with a task (on a fake often with a scenario), so that no run is
        spent on unknown ids alone and FAILED and partly failed tasks turn up in a few runs."""
        if not self.can_create():
            return multiple()
        if effect is not None and self.admin is not None:
            self.plant_scenario(choice, effect)
        return self.create_task(choice, n, prompt, image)

    @precondition(lambda self: self.can_create())
    @rule(target=tasks, choice=CHOICE, n=N, prompt=PROMPT, image=IMAGE, cancel_at=st.none() | CANCEL_AGES)
    def create(self, choice, n, prompt, image, cancel_at):
        """Create a task; sometimes change one's mind, at once or (on a fake) when it is
        `cancel_at` seconds old: the sure way to cancel tasks still PENDING or RUNNING, with the
        clock moving through the other steps and the client's 429 back-off."""
        task = self.create_task(choice, n, prompt, image)
        if cancel_at is not None and isinstance(task, Tracked):
            self.cancel_at_age(task, cancel_at)
        return task

    def create_task(self, choice, n, prompt, image):
        endpoint, name = self.choices[choice % len(self.choices)]
        model = self.contract.catalog.model(name)
        cheap = self.contract.target.real
        n = model.n.min if cheap else max(model.n.min, min(n, model.n.max))
        images = [sample_image(*image)] * model.input_images.min
        body = body_for(endpoint, name, prompt, images, {"n": n})
        headers = headers_for(self.contract.catalog, endpoint)
        expect = oracle(self.contract.catalog, endpoint, body, headers, self.contract.target.region)
        assert expect.accepted, f"the machine built an invalid {endpoint} request: {expect.rule} {expect.why}"
        limit = model.rate_limit.concurrent_tasks
        if limit and len(self.active(name)) >= limit:
            for task in self.active(name):
                self.poll(task)
            if len(self.active(name)) >= limit:
                note(f"{name}: {limit} tasks of this run still running, the most the docs allow at once")
                return multiple()
        after = self.now()
        try:
            answer = self.client.generate(endpoint, body, headers=headers, spend=expect.images or n)
        except BudgetExhausted as exhausted:
            note(f"budget: {exhausted}; no more tasks")
            self.exhausted = self.shared["exhausted"] = True
            return multiple()
        before = self.now()
        self.shared["created"] += 1
        if answer.status == 429 and limit and self.running_on_server(name) >= limit:
            # Still throttled after the client's back-off, with as many tasks of the model
            # running in the account (other tests', other clients') as the docs allow: right.
            note(f"{name}: 429 with {limit} or more tasks running in the account")
            self.verify(answer)
            return multiple()
        self.verify(answer, "valid_request_accepted", expect=expect)
        output = (answer.json or {}).get("output") or {}
        if answer.status != 200 or not output.get("task_id"):
            return multiple()
        planted = [sid for sid, where in self.scenarios.items() if where == endpoint]
        task = Tracked(output["task_id"], endpoint, name, expect, after, before, history=[output.get("task_status") or "PENDING"])
        if planted:
            # One-shot: the first creation on that endpoint took it (or a throttled try did).
            task.scenario = self.scenarios.pop(planted[0])
        task.last, task.unchecked = answer, True
        self.known.append(task)
        event(f"created: {endpoint}")
        return task

    # Hypothesis tries the simplest run first: the first rule (by number of arguments, then
    # name) over and over. poll_task comes first where there is no admin API, so that the one
    # cheap run against a real service follows its task like a client instead of polling
    # made-up ids; hence also time_passes, not advance_clock.

    @rule(task=tasks)
    def poll_task(self, task):
        self.poll(task)

    @precondition(lambda self: self.admin is not None)
    @rule(task=tasks, wait=SHORT_MOVES, times=st.integers(1, 3))
    def poll_later(self, task, wait, times):
        """Let `wait` seconds pass, then poll `times` times in a row (as a client polls every
        so often): a status that flickers shows up between two close polls."""
        self.admin.advance(wait)
        for _ in range(times):
            self.poll(task)

    @rule(task=tasks, age=CANCEL_AGES)
    def cancel(self, task, age):
        """Poll the task and cancel it (the status before the cancel is known only from a poll
        right before it); on a fake first let the task grow `age` seconds old, if younger, so
        that PENDING, RUNNING and ended tasks all get cancelled."""
        self.cancel_at_age(task, age)

    def cancel_at_age(self, task: Tracked, age: float) -> None:
        if self.admin is not None:
            grown = self.admin.now() - task.created_before
            if grown < age:
                self.admin.advance(age - grown)
        self.poll_and_cancel(task)

    def poll_and_cancel(self, task: Tracked) -> None:
        _, was = self.poll(task)
        if task.expired or was in (None, "UNKNOWN"):
            answer = self.client.cancel_task(task.task_id)
            answer.model = task.model
            self.verify(answer)  # what a cancel of an unknown id answers is not documented
            return
        polled_at = self.now()
        answer = self.client.cancel_task(task.task_id)
        answer.model = task.model
        moved = self.admin is None or self.now() != polled_at
        if was == "PENDING" and answer.status != 200 and moved:
            # Time passed between poll and cancel (real time, or the client's 429 back-off on
            # the fake's clock): if the task has moved on since, a refusal was right.
            _, now_is = self.poll(task)
            if now_is not in (None, "PENDING", "UNKNOWN"):
                was = now_is
        event(f"cancel: {was} -> {answer.status}")
        self.verify(answer, "cancel_only_pending", status_before_cancel=was)
        if answer.status == 200:
            task.history.append("CANCELED")   # a cancel that succeeded leaves the task CANCELED
            task.last, task.unchecked = answer, True

    @rule(task_id=st.uuids().map(str))
    def poll_unknown(self, task_id):
        answer = self.client.get_task(task_id)
        self.verify(answer, "unknown_task_is_unknown")

    @precondition(lambda self: self.other_key is not None)
    @rule(task=tasks, listing=st.booleans())
    def other_account_looks(self, task, listing):
        """Another account of the same region polls the task, or lists its own tasks."""
        if listing:
            self.other_account_lists()
        else:
            self.other_account_polls(task)

    def other_account_polls(self, task: Tracked) -> None:
        answer = self.client.get_task(task.task_id, key=self.other_key)
        answer.model = task.model
        self.verify(answer, "other_account_cannot_see")

    def other_account_lists(self) -> None:
        answer = self.client.list_tasks({"page_no": 1, "page_size": 100}, key=self.other_key)
        self.verify(answer, "other_account_cannot_see", foreign_ids=[t.task_id for t in self.known])

    @precondition(lambda self: self.admin is not None)
    @rule(seconds=CLOCK_MOVES)
    def time_passes(self, seconds):
        """The fake's clock moves on, sometimes past the tasks' 24 hours."""
        self.admin.advance(seconds)
        event("clock: past 24 h" if seconds >= TASK_TTL else "clock: moved")

    @precondition(lambda self: self.admin is not None and self.choices and len(self.scenarios) < 2)
    @rule(choice=st.integers(0, 1), effect=EFFECTS)
    def plant_scenario(self, choice, effect):
        endpoint, name = self.choices[choice % len(self.choices)]
        added = self.admin.add_scenario({"match": {"endpoint": endpoint, "model": name}, "effect": effect, "times": 1})
        self.scenarios[added["id"]] = endpoint
        self.shared["planted"].append(added["id"])
        event(f"scenario: {effect['type']}")

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def statuses_move_forward(self):
        for task in self.known:
            if task.unchecked:
                task.unchecked = False
                self.verify(task.last, "status_moves_forward", always=False, statuses=list(task.history))

    @invariant()
    def expired_tasks_are_unknown(self):
        if self.admin is None or all(t.expired for t in self.known):
            return
        now = self.admin.now()
        for task in self.known:
            if not task.expired and now - task.created_before >= TASK_TTL + EDGE:
                self.poll(task)  # verifies expired_task_is_unknown

    def teardown(self):
        """End of a run, on every task of it: another account sees none of them; on a fake,
        once every one has ended, two polls in a row agree (terminal states stick), and a day
        later each answers UNKNOWN (which also frees the model's concurrent-task slots for the
        next run). Skipped after a failure, so as not to bury it."""
        try:
            if self.known and not self.failed:
                if self.other_key is not None:
                    for task in self.known:
                        self.other_account_polls(task)
                    self.other_account_lists()
                if self.admin is not None:
                    self.admin.advance(ALL_ENDED)
                    for task in self.known:
                        if not task.expired:
                            self.poll(task)
                            self.poll(task)
        finally:
            if self.admin is not None:
                for scenario_id in self.shared["planted"]:
                    self.admin.remove_scenario(scenario_id)
                self.shared["planted"].clear()
                if self.known:
                    self.admin.advance(TASK_TTL + 1)
        if self.admin is not None and not self.failed:
            for task in self.known:
                if not task.expired:
                    self.poll(task)  # verifies expired_task_is_unknown


def test_task_state_machine(contract):
    if not async_choices(contract):
        pytest.skip(f"no model of {', '.join(ASYNC_ENDPOINTS)} is served here (profile, region, models)")
    shared = {"created": 0, "planted": [], "exhausted": False}
    fake = contract.target.admin is not None
    run_settings = settings(
        max_examples=min(contract.settings.max_examples, FAKE_EXAMPLES if fake else REAL_EXAMPLES),
        stateful_step_count=FAKE_STEPS if fake else REAL_STEPS,
        deadline=None, database=None,
        # No shrinking: each replay costs dozens of requests (against a real service, real time
        # and money), and against a broken fake Hypothesis was seen shrinking for its full five
        # minutes. The failing run's steps are printed as found; the report names the check and
        # the request that showed it.
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    try:
        run_state_machine_as_test(lambda: TaskMachine(contract, shared), settings=run_settings)
    finally:
        if fake:
            for scenario_id in shared["planted"]:  # a run that failed mid-way
                contract.target.admin.remove_scenario(scenario_id)
    if shared["exhausted"] and not shared["created"]:
        pytest.skip("budget: not one task could be created (only unknown ids were polled)")
