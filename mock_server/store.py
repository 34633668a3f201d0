"""Where the fake keeps tasks, result images and uploads: a small interface, in memory for now.

Shaped for an embedded database shared by several workers later: records are immutable values
(Task, ImageRecord, UploadRecord) written whole; lookups are by id; listing is a TaskQuery
(owner, optional model, key id and status, a submit-time range) answered newest first with its
total, from indexes; expiry deletes what is past its time, a bounded batch at a time.

No cost here grows with the number of stored records: lookups are O(1), a query is
O(log n + page), expiry and status changes are O(log n) each, and every batch operation
(expire, due) does at most `limit` records' worth of work.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from sortedcontainers import SortedList

from .domain.tasks import Task, expires_at, next_change
from .ordered import TimeOrderedList
from .uploads import UploadRecord


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One result image: enough to render it again, byte for byte, and to know when it expires."""

    image_id: str
    prompt: str
    seed: int
    index: int
    width: int
    height: int
    expires: float


@dataclass(frozen=True)
class TaskQuery:
    """Which of an owner's tasks: each filter optional; the submit-time bounds are inclusive."""

    account: str
    region: str
    model: str | None = None
    api_key_id: str | None = None
    status: str | None = None
    submitted_from: float = -math.inf
    submitted_to: float = math.inf


class Store(Protocol):
    def create(self, task: Task) -> None: ...
    def get(self, task_id: str) -> Task | None: ...
    def update(self, task: Task) -> None: ...
    def query(self, query: TaskQuery, offset: int = 0, limit: int = 0) -> tuple[list[Task], int]: ...
    def due(self, now: float, limit: int) -> list[Task]: ...
    def expire(self, now: float, limit: int | None = None) -> int: ...
    def put_image(self, record: ImageRecord) -> None: ...
    def get_image(self, image_id: str) -> ImageRecord | None: ...
    def put_upload(self, record: UploadRecord) -> bool: ...
    def get_upload(self, key: str) -> UploadRecord | None: ...
    def uploaded_bytes(self, directory: str) -> int: ...
    def counts(self) -> dict[str, int]: ...
    def clear(self) -> None: ...


# A task's place in time order: (submit_time, tie, id); `tie` orders tasks submitted at the same
# instant (a frozen clock) in creation order, and is 0 for all others. One tuple per task, shared
# by every index list the task is in, and made again from the task to find it there.
_Position = tuple[float, int, str]
# An index: (account, region, model or None, api_key_id or None, status or None). Each task is in
# the 8 combinations of its own values and None ("any"), so every mix of filters is one list.
_Facet = tuple[str, str, str | None, str | None, str | None]


def _facets(task: Task, status: str | None) -> tuple[_Facet, ...]:
    """The 4 indexes of a task with this status filter (None: those that filter on no status)."""
    return _facets_of(task.account, task.region, task.model, task.api_key_id, status)


@lru_cache(maxsize=4096)  # owners, models, keys and statuses are few: the same 4 facets for most tasks
def _facets_of(account: str, region: str, model: str, key_id: str, status: str | None) -> tuple[_Facet, ...]:
    return tuple((account, region, m, k, status) for m in (None, model) for k in (None, key_id))


class MemoryStore:
    """Dicts by id, sorted index lists by facet, and queues in time order.

    Records are created in clock order and the clock only moves forward, so each expiry queue
    is already sorted as long as every record of a kind lives equally long (tasks: the task TTL;
    images: until the latest moment any URL to them can still be valid; uploads: 48 hours). The
    task and image queues hold ids only (each record knows its own expiry): a (time, id) pair per
    record would be a tenth of the 1 KB a stored task may take.
    """

    def __init__(self, task_ttl: float):
        self.task_ttl = task_ttl
        self.clear()

    def clear(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._ties: dict[str, int] = {}  # only tasks whose submit_time equals the one before's
        self._last_submit, self._last_tie = math.nan, 0
        self._index: dict[_Facet, TimeOrderedList] = {}
        self._task_expiry: deque[str] = deque()
        # Tasks whose status changes by itself at a known time (clock-timed ones): (when, id), in
        # time order, and each one's `when`, to find its entry again.
        self._changes: SortedList = SortedList()
        self._change_at: dict[str, float] = {}
        # A task's result images are the task's own data (its prompt, seed and size) plus their
        # place in it: while the task is stored, an image is kept as its task's id, not a copy
        # (ImageRecord again when the task expires first). How long images outlive their task's
        # submission is the same for all; learnt from the first one.
        self._images: dict[str, ImageRecord | str] = {}
        self._image_lifetime: float | None = None
        self._image_expiry: deque[str] = deque()
        self._uploads: dict[str, UploadRecord] = {}
        self._upload_expiry: deque[tuple[float, str]] = deque()
        self._upload_bytes: dict[str, int] = {}

    # --- tasks -----------------------------------------------------------------------------

    def create(self, task: Task) -> None:
        if task.task_id in self._tasks:
            raise KeyError(f"task {task.task_id} exists")
        self._tasks[task.task_id] = task
        if task.submit_time == self._last_submit:
            self._last_tie += 1
            self._ties[task.task_id] = self._last_tie
        else:
            self._last_submit, self._last_tie = task.submit_time, 0
        self._add(self._position(task), _facets(task, None) + _facets(task, task.status))
        self._task_expiry.append(task.task_id)
        self._schedule(task)
        self._share_images(task)

    def _position(self, task: Task) -> _Position:
        return (task.submit_time, self._ties.get(task.task_id, 0), task.task_id)

    def _stored_position(self, task: Task) -> _Position:
        """The position tuple the indexes already hold for this task (an equal new one would
        double its memory once added to lists beside the old)."""
        position = self._position(task)
        owner = self._index[(task.account, task.region, None, None, None)]
        return owner[owner.bisect_left(position)]  # type: ignore[no-any-return]

    def _share_images(self, task: Task) -> None:
        """Keep the task's result images as references to it, where they hold nothing else."""
        for index, outcome in enumerate(task.outcomes):
            record = self._images.get(outcome.image_id) if outcome.image_id else None
            if not isinstance(record, ImageRecord) or (record.prompt, record.seed, record.index, record.width, record.height) \
                    != (task.actual_prompt, task.seed, index, task.width, task.height):
                continue
            lifetime = record.expires - task.submit_time
            if self._image_lifetime is None:
                self._image_lifetime = lifetime
            if lifetime == self._image_lifetime and task.submit_time + lifetime == record.expires:
                self._images[record.image_id] = task.task_id

    def _task_image(self, image_id: str, task: Task) -> ImageRecord:
        index = next(i for i, outcome in enumerate(task.outcomes) if outcome.image_id == image_id)
        return ImageRecord(image_id, task.actual_prompt, task.seed, index, task.width, task.height,
                           self._shared_expiry(task.task_id))

    def _shared_expiry(self, task_id: str) -> float:
        """When an image kept as a reference to this (stored) task expires."""
        assert self._image_lifetime is not None
        return self._tasks[task_id].submit_time + self._image_lifetime

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def update(self, task: Task) -> None:
        old = self._tasks.get(task.task_id)
        if old is None:
            raise KeyError(f"task {task.task_id} does not exist")
        self._tasks[task.task_id] = task
        if old.status != task.status:
            position = self._stored_position(old)
            self._discard(position, _facets(old, old.status))
            self._add(position, _facets(task, task.status))
        self._schedule(task)

    def query(self, query: TaskQuery, offset: int = 0, limit: int = 0) -> tuple[list[Task], int]:
        """Up to `limit` matching tasks after skipping `offset`, newest first; and how many match."""
        positions = self._index.get((query.account, query.region, query.model, query.api_key_id, query.status))
        if not positions:
            return [], 0
        low = positions.bisect_left((query.submitted_from,))
        high = positions.bisect_right((query.submitted_to, math.inf))
        total = max(0, high - low)
        stop = high - offset
        start = max(low, stop - limit)
        page = [self._tasks[p[2]] for p in positions.islice(start, stop, reverse=True)] if stop > start else []
        return page, total

    def due(self, now: float, limit: int) -> list[Task]:
        """Up to `limit` tasks whose status has changed by itself by `now`, soonest first; an empty
        list means none is left. They leave the schedule: the caller writes each back with
        update(), which schedules its next change, if any."""
        end = min(limit, self._changes.bisect_left((math.nextafter(now, math.inf),)))
        found = [self._tasks[task_id] for _, task_id in self._changes.islice(0, end)]
        del self._changes[:end]
        for task in found:
            del self._change_at[task.task_id]
        return found

    def _schedule(self, task: Task) -> None:
        when, old = next_change(task), self._change_at.get(task.task_id)
        if when == old:
            return
        if old is not None:
            self._changes.remove((old, task.task_id))
            del self._change_at[task.task_id]
        if when is not None:
            self._changes.add((when, task.task_id))
            self._change_at[task.task_id] = when

    def _add(self, position: _Position, facets: tuple[_Facet, ...]) -> None:
        for facet in facets:
            positions = self._index.get(facet)
            if positions is None:
                positions = self._index[facet] = TimeOrderedList()
            positions.add(position)

    def _remove_task(self, task_id: str) -> bool:
        task = self._tasks.get(task_id)
        if task is None:
            return False
        for outcome in task.outcomes:  # its images outlive it: now on their own
            if outcome.image_id and self._images.get(outcome.image_id) == task_id:
                self._images[outcome.image_id] = self._task_image(outcome.image_id, task)
        self._discard(self._position(task), _facets(task, None) + _facets(task, task.status))
        del self._tasks[task_id]
        self._ties.pop(task_id, None)
        when = self._change_at.pop(task_id, None)
        if when is not None:
            self._changes.remove((when, task_id))
        return True

    def _discard(self, position: _Position, facets: tuple[_Facet, ...]) -> None:
        for facet in facets:
            positions = self._index[facet]
            positions.remove(position)
            if not positions:
                del self._index[facet]  # owners and models come and go: no empty lists left behind

    # --- expiry ----------------------------------------------------------------------------

    def expire(self, now: float, limit: int | None = None) -> int:
        """Delete records past their time, at most `limit` of them (None: all); how many went."""
        budget = math.inf if limit is None else limit
        removed = 0
        while self._task_expiry and removed < budget:
            task = self._tasks.get(self._task_expiry[0])
            if task is not None and expires_at(task, self.task_ttl) > now:
                break
            self._task_expiry.popleft()
            removed += self._remove_task(task.task_id) if task is not None else 0
        while self._image_expiry and removed < budget:
            image_id = self._image_expiry[0]
            found = self._images.get(image_id)
            expires = None if found is None else found.expires if isinstance(found, ImageRecord) else self._shared_expiry(found)
            if expires is not None and expires > now:
                break
            self._image_expiry.popleft()
            if found is not None:
                del self._images[image_id]
                removed += 1
        while self._upload_expiry and self._upload_expiry[0][0] <= now and removed < budget:
            record = self._uploads.pop(self._upload_expiry.popleft()[1], None)
            if record is not None:
                left = self._upload_bytes[record.directory] - len(record.data)
                if left:
                    self._upload_bytes[record.directory] = left
                else:
                    del self._upload_bytes[record.directory]
            removed += 1
        return removed

    # --- images and uploads ----------------------------------------------------------------

    def put_image(self, record: ImageRecord) -> None:
        self._images[record.image_id] = record
        self._image_expiry.append(record.image_id)

    def get_image(self, image_id: str) -> ImageRecord | None:
        found = self._images.get(image_id)
        return self._task_image(image_id, self._tasks[found]) if isinstance(found, str) else found

    def put_upload(self, record: UploadRecord) -> bool:
        """False (and nothing stored) when the key exists: uploads forbid overwriting."""
        if record.key in self._uploads:
            return False
        self._uploads[record.key] = record
        self._upload_expiry.append((record.expires, record.key))
        self._upload_bytes[record.directory] = self._upload_bytes.get(record.directory, 0) + len(record.data)
        return True

    def get_upload(self, key: str) -> UploadRecord | None:
        return self._uploads.get(key)

    def uploaded_bytes(self, directory: str) -> int:
        """Bytes stored under one upload policy's directory."""
        return self._upload_bytes.get(directory, 0)

    def counts(self) -> dict[str, int]:
        """Records held, by kind (expired ones not yet swept included)."""
        return {"tasks": len(self._tasks), "images": len(self._images), "uploads": len(self._uploads),
                "upload_bytes": sum(self._upload_bytes.values())}
