"""The store's indexes answer every query exactly as a scan of all tasks would, and its schedule
of status changes and bounded expiry lose nothing: checked against a brute-force model."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sortedcontainers import SortedList

from mock_server.domain import tasks as t
from mock_server.ordered import TimeOrderedList
from mock_server.store import MemoryStore, TaskQuery
from mock_server.uploads import UploadRecord

TTL = 100.0
OWNERS = [("a", "cn-beijing"), ("a", "us-east-1"), ("b", "cn-beijing")]
MODELS = ["m1", "m2"]
KEYS = ["k1", "k2"]
STATUSES = [None, t.PENDING, t.RUNNING, t.SUCCEEDED, t.FAILED, t.CANCELED]


def _task(task_id: str, owner: tuple[str, str], model: str, key_id: str, now: float, timing: t.Timing, ok: bool) -> t.Task:
    outcomes = (t.ImageOutcome("i"),) if ok else (t.ImageOutcome(None, "E", "m"),)
    return t.create(t.Task(task_id=task_id, account=owner[0], region=owner[1], api_key_id=key_id, model=model,
                           endpoint="e", orig_prompt="p", prompt_extend=False, seed=1, width=1, height=1, timing=timing,
                           outcomes=outcomes), now)


class StoreAgainstScan(RuleBasedStateMachine):
    """Tasks are created, polled, cancelled and aged; the model keeps every task ever made and
    computes each answer by observing them all at the current time."""

    @initialize()
    def start(self):
        self.store = MemoryStore(task_ttl=TTL)
        self.now = 1000.0
        self.made: dict[str, t.Task] = {}  # as last written, expired ones included
        self.count = 0

    def _alive(self) -> list[t.Task]:
        return [task for task in self.made.values() if not t.is_expired(task, self.now, TTL)]

    def _catch_up(self):
        # What the service does before a status query: write back what changed with time.
        while due := self.store.due(self.now, 3):
            for task in due:
                self.store.update(t.observe(task, self.now))
                self.made[task.task_id] = t.observe(task, self.now)

    @rule(owner=st.sampled_from(OWNERS), model=st.sampled_from(MODELS), key_id=st.sampled_from(KEYS),
          mode=st.sampled_from(["time", "polls"]), pending=st.integers(0, 30), running=st.integers(0, 30), ok=st.booleans())
    def create(self, owner, model, key_id, mode, pending, running, ok):
        task = _task(f"t{self.count}", owner, model, key_id, self.now, t.Timing(mode, pending, running), ok)
        self.count += 1
        self.store.create(task)
        self.made[task.task_id] = task

    @precondition(lambda self: self.made)
    @rule(data=st.data())
    def poll(self, data):
        task_id = data.draw(st.sampled_from(sorted(self.made)))
        stored = self.store.get(task_id)
        if stored is None:
            assert t.is_expired(self.made[task_id], self.now, TTL)
            return
        observed = t.observe(stored, self.now, poll=True)
        self.store.update(observed)
        self.made[task_id] = observed

    @precondition(lambda self: self.made)
    @rule(data=st.data())
    def cancel(self, data):
        task_id = data.draw(st.sampled_from(sorted(self.made)))
        stored = self.store.get(task_id)
        if stored is not None and t.observe(stored, self.now).status == t.PENDING:
            canceled = t.cancel(stored, self.now)
            self.store.update(canceled)
            self.made[task_id] = canceled

    @rule(seconds=st.sampled_from([0.5, 1, 7, 20, 60, 99]))
    def age(self, seconds):
        self.now += seconds

    @rule(limit=st.integers(1, 5))
    def expire_some(self, limit):
        removed = self.store.expire(self.now, limit)
        assert removed <= limit

    @rule(owner=st.sampled_from(OWNERS), model=st.sampled_from([None, *MODELS]), key_id=st.sampled_from([None, *KEYS]),
          status=st.sampled_from(STATUSES), since=st.sampled_from([None, 0, 10, 50]), until=st.sampled_from([None, 0, 30]),
          offset=st.integers(0, 6), limit=st.integers(0, 5))
    def query(self, owner, model, key_id, status, since, until, offset, limit):
        if status is not None:
            self._catch_up()
        alive_from = math.nextafter(self.now - TTL, math.inf)
        low = alive_from if since is None else max(alive_from, self.now - since)
        high = math.inf if until is None else self.now - until
        query = TaskQuery(owner[0], owner[1], model=model, api_key_id=key_id, status=status, submitted_from=low, submitted_to=high)
        page, total = self.store.query(query, offset, limit)
        expected = [task for task in reversed(list(self.made.values()))  # newest first: created in order
                    if (task.account, task.region) == owner and model in (None, task.model)
                    and key_id in (None, task.api_key_id) and status in (None, t.observe(task, self.now).status)
                    and low <= task.submit_time <= high]
        assert total == len(expected)
        assert [task.task_id for task in page] == [task.task_id for task in expected[offset:offset + limit]]

    @invariant()
    def live_tasks_are_all_found(self):
        for task in self._alive():
            assert self.store.get(task.task_id) is not None


StoreAgainstScan.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestStoreAgainstScan = StoreAgainstScan.TestCase


def test_expiry_frees_every_kind_of_record_and_its_index_entries():
    store = MemoryStore(task_ttl=10)
    for i in range(50):
        store.create(_task(f"t{i}", ("a", "cn-beijing"), MODELS[i % 2], "k1", float(i) / 10, t.Timing("time", 1, 1), True))
    store.put_upload(UploadRecord("dir/f", b"x" * 100, "image/png", "a", "cn-beijing", 20.0, "dir"))
    assert store.uploaded_bytes("dir") == 100 and store.counts()["tasks"] == 50
    assert store.expire(30.0, limit=20) == 20  # bounded: the rest waits for the next batch
    while store.expire(30.0, limit=20):
        pass
    assert store.counts() == {"tasks": 0, "images": 0, "uploads": 0, "upload_bytes": 0}
    assert store.uploaded_bytes("dir") == 0
    assert store._index == {} and store._ties == {}  # no index entry outlives its task


def test_due_lists_time_timed_tasks_once_their_status_changed_and_reschedules_on_update():
    store = MemoryStore(task_ttl=1000)
    timed = _task("timed", ("a", "cn-beijing"), "m1", "k1", 0.0, t.Timing("time", 5, 10), True)
    polled = _task("polled", ("a", "cn-beijing"), "m1", "k1", 0.0, t.Timing("polls", 1, 1), True)
    store.create(timed)
    store.create(polled)
    assert store.due(4.9, 10) == []
    assert [x.task_id for x in store.due(5.0, 10)] == ["timed"]  # poll-timed tasks never are
    store.update(t.observe(timed, 5.0))  # RUNNING: next change at 15
    assert store.due(14.0, 10) == []
    [running] = store.due(15.0, 10)
    store.update(t.observe(running, 15.0))
    assert store.get("timed").status == t.SUCCEEDED and store.due(10**6, 10) == []
    assert store.query(TaskQuery("a", "cn-beijing", status=t.SUCCEEDED), 0, 5)[1] == 1
    assert store.query(TaskQuery("a", "cn-beijing", status=t.PENDING), 0, 5)[1] == 1  # the poll-timed one
    store.update(replace(store.get("polled"), status=t.CANCELED))
    assert store.query(TaskQuery("a", "cn-beijing", status=t.PENDING), 0, 5)[1] == 0


def test_a_tasks_images_are_kept_as_references_to_it_and_outlive_it_unchanged():
    from mock_server.store import ImageRecord

    store = MemoryStore(task_ttl=TTL)
    lifetime = 2 * TTL  # images live past their task, as result URLs do
    task = t.create(t.Task(task_id="t1", account="a", region="cn-beijing", api_key_id="k1", model="m1", endpoint="e",
                           orig_prompt="a cat", prompt_extend=True, seed=7, width=640, height=480,
                           timing=t.Timing("time", 0, 0), outcomes=(t.ImageOutcome("i0"), t.ImageOutcome(None, "E", "m"),
                                                                    t.ImageOutcome("i2"))), 1000.0)
    records = [ImageRecord(f"i{n}", task.actual_prompt, 7, n, 640, 480, 1000.0 + lifetime) for n in range(3)]
    sync = ImageRecord("s", "other", 1, 0, 8, 8, 1000.0 + lifetime)  # a sync call's image: no task of its own
    for record in [*records, sync]:
        store.put_image(record)
    store.create(task)
    assert store._images["i0"] == "t1" and store._images["i2"] == "t1"  # references, not copies
    assert isinstance(store._images["i1"], ImageRecord)  # a failed image's record is no task's
    assert [store.get_image(f"i{n}") for n in range(3)] == records and store.get_image("s") == sync
    assert store.expire(1000.0 + TTL) == 1  # the task goes; its images stay, as they were
    assert store.get("t1") is None and [store.get_image(f"i{n}") for n in range(3)] == records
    assert all(isinstance(store._images[f"i{n}"], ImageRecord) for n in range(3))
    assert store.expire(1000.0 + lifetime - 1) == 0
    assert store.expire(1000.0 + lifetime) == 4
    assert store.counts()["images"] == 0 and all(store.get_image(i) is None for i in ("i0", "i1", "i2", "s"))


class TimeOrderedAgainstSortedList(RuleBasedStateMachine):
    """TimeOrderedList answers as SortedList does, whatever the order values come and go in: in
    order, out of order, from the front, from the middle (a small `near`, so it also turns
    itself into a SortedList within the run)."""

    @initialize(near=st.integers(0, 4))
    def start(self, near):
        self.ordered, self.reference, self.clock = TimeOrderedList(near=near), SortedList(), 0

    @rule(step=st.integers(0, 3))
    def add_in_order(self, step):
        self.clock += step
        self.ordered.add(self.clock)
        self.reference.add(self.clock)

    @rule(value=st.integers(-5, 60))
    def add_anywhere(self, value):
        self.ordered.add(value)
        self.reference.add(value)

    @precondition(lambda self: len(self.reference) > 0)
    @rule(data=st.data())
    def remove_first_or_any(self, data):
        value = self.reference[0] if data.draw(st.booleans()) else data.draw(st.sampled_from(list(self.reference)))
        self.ordered.remove(value)
        self.reference.remove(value)

    @rule(value=st.integers(-10, 70))
    def remove_what_may_be_absent(self, value):
        if value in self.reference:
            self.ordered.remove(value)
            self.reference.remove(value)
        else:
            with pytest.raises(ValueError):
                self.ordered.remove(value)

    @rule(value=st.integers(-10, 70), data=st.data())
    def look_up(self, value, data):
        assert self.ordered.bisect_left(value) == self.reference.bisect_left(value)
        assert self.ordered.bisect_right(value) == self.reference.bisect_right(value)
        size = len(self.reference)
        start = data.draw(st.integers(0, size))
        stop = data.draw(st.integers(start, size))
        reverse = data.draw(st.booleans())
        assert list(self.ordered.islice(start, stop, reverse=reverse)) == list(self.reference.islice(start, stop, reverse=reverse))
        if size:
            index = data.draw(st.integers(0, size - 1))
            assert self.ordered[index] == self.reference[index]

    @invariant()
    def same_values(self):
        assert len(self.ordered) == len(self.reference)
        assert list(self.ordered.islice(0, len(self.ordered))) == list(self.reference)


TestTimeOrderedAgainstSortedList = TimeOrderedAgainstSortedList.TestCase
TestTimeOrderedAgainstSortedList.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_a_time_ordered_list_becomes_a_sorted_list_before_a_change_far_from_its_end():
    """What bounds every operation's cost: a change more than `near` from the end of the plain
    list (which would move everything after it) is made in a SortedList instead."""
    ordered = TimeOrderedList(near=3)
    for value in range(10):
        ordered.add(value)
    ordered.remove(0)  # the front: a step of the start
    ordered.add(8.5)   # near the end: a small insert
    ordered.remove(8)
    assert ordered._sorted is None
    ordered.remove(3)  # far from the end
    assert ordered._sorted is not None
    assert list(ordered.islice(0, len(ordered))) == [1, 2, 4, 5, 6, 7, 8.5, 9]
    front = TimeOrderedList(near=3)
    for value in range(10):
        front.add(value)
    front.add(-1)  # the clock set back: before everything
    assert front._sorted is not None and front[0] == -1
