"""The task state machine, pure: time-based and poll-based phases, cancel, expiry."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.domain import tasks as t

T0 = 1_700_000_000.0


ONE_IMAGE = (t.ImageOutcome("i1"),)


def make(mode="time", pending=2.0, running=10.0, outcomes=ONE_IMAGE, failure=None) -> t.Task:
    task = t.Task(task_id="task", account="acct", region="cn-beijing", api_key_id="k", model="qwen-image-plus",
                  endpoint="text2image", orig_prompt="p", prompt_extend=False, seed=1, width=1328, height=1328,
                  timing=t.Timing(mode, pending, running), outcomes=outcomes, failure=failure)
    return t.create(task, T0)


def test_time_mode_moves_pending_running_succeeded_with_the_phase_times():
    task = make()
    assert t.observe(task, T0 + 1.9).status == t.PENDING
    running = t.observe(task, T0 + 2)
    assert (running.status, running.scheduled_time, running.end_time) == (t.RUNNING, T0 + 2, None)
    done = t.observe(task, T0 + 500)
    assert (done.status, done.scheduled_time, done.end_time) == (t.SUCCEEDED, T0 + 2, T0 + 12)


def test_poll_mode_counts_polls_and_ignores_time():
    task = make("polls", pending=1, running=2)
    assert t.observe(task, T0 + 10_000).status == t.PENDING  # no poll, no progress
    seen = []
    for i in range(5):
        task = t.observe(task, T0 + i, poll=True)
        seen.append(task.status)
    assert seen == [t.PENDING, t.RUNNING, t.RUNNING, t.SUCCEEDED, t.SUCCEEDED]
    assert task.scheduled_time == T0 + 1 and task.end_time == T0 + 3


def test_fast_setting_finishes_on_the_first_poll():
    task = t.observe(make("polls", 0, 0), T0 + 0.5, poll=True)
    assert task.status == t.SUCCEEDED and task.end_time == T0 + 0.5


def test_a_task_with_no_successful_image_fails():
    task = make(outcomes=(t.ImageOutcome(None, "InternalError", "boom"),))
    assert t.observe(task, T0 + 100).status == t.FAILED
    assert make(failure=("DataInspectionFailed", "m")).final_status == t.FAILED


def test_partial_failure_is_succeeded_and_counts_only_successes():
    task = t.observe(make(outcomes=(t.ImageOutcome("a"), t.ImageOutcome(None, "InternalError.Timeout", "m"))), T0 + 100)
    assert task.status == t.SUCCEEDED and task.succeeded_count == 1


def test_cancel_only_while_pending():
    task = make()
    canceled = t.cancel(task, T0 + 1)
    assert (canceled.status, canceled.end_time) == (t.CANCELED, T0 + 1)
    assert t.observe(canceled, T0 + 1000).status == t.CANCELED  # terminal states stick
    with pytest.raises(t.NotCancelable):
        t.cancel(task, T0 + 3)
    with pytest.raises(t.NotCancelable):
        t.cancel(canceled, T0 + 2)


def test_expiry_is_24_hours_after_submission():
    task = make()
    assert not t.is_expired(task, T0 + 86399.999, 86400)
    assert t.is_expired(task, T0 + 86400, 86400)


@given(st.lists(st.floats(0, 200), min_size=1, max_size=20), st.sampled_from(["time", "polls"]),
       st.integers(0, 3), st.integers(0, 3), st.booleans())
def test_status_only_moves_forward_along_documented_transitions(steps, mode, pending, running, poll):
    task, previous = make(mode, pending, running), t.PENDING
    for step in sorted(steps):
        task = t.observe(task, T0 + step, poll=poll)
        if task.status != previous:
            assert task.status in t.TRANSITIONS[previous]
            previous = task.status
        if task.status in t.TERMINAL:
            assert task.end_time is not None and task.end_time >= task.scheduled_time >= task.submit_time


def test_timing_from_data_rejects_nonsense():
    assert t.Timing.from_data({"mode": "polls", "pending": 1, "running": 2}) == t.Timing("polls", 1, 2)
    with pytest.raises(ValueError):
        t.Timing.from_data({"mode": "hours"})
    with pytest.raises(ValueError):
        t.Timing.from_data({"pending": -1})


def test_create_resets_any_state():
    task = replace(make(), status=t.SUCCEEDED, polls=9, end_time=5.0)
    fresh = t.create(task, T0 + 7)
    assert (fresh.status, fresh.polls, fresh.end_time, fresh.submit_time) == (t.PENDING, 0, None, T0 + 7)


@given(changes=st.fixed_dictionaries({}, optional={
    "status": st.sampled_from([t.PENDING, t.RUNNING, t.SUCCEEDED, t.FAILED, t.CANCELED]),
    "polls": st.integers(0, 9), "end_time": st.none() | st.floats(0, 2e9), "scheduled_time": st.none() | st.floats(0, 2e9),
    "orig_prompt": st.text(max_size=5), "prompt_extend": st.booleans()}))
def test_the_fast_change_of_a_task_is_dataclasses_replace(changes):
    task = make()
    changed = t._changed(task, **changes)
    assert changed == replace(task, **changes) and type(changed) is t.Task
    assert task == make()  # the original is untouched


@given(epoch=st.floats(-1e9, 32503680000.0) | st.integers(0, 32503680000 * 1000).map(lambda ms: ms / 1000))
def test_task_times_print_as_datetime_prints_them(epoch):
    from datetime import datetime

    from mock_server.backend.tasks import SERVICE_TZ, _second, format_time

    _second.cache_clear()  # each example on a cold cache: what is cached is what a miss computes
    assert format_time(epoch) == datetime.fromtimestamp(epoch, SERVICE_TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
