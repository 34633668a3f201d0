"""Where the fake keeps tasks and result images: a small interface, in memory for now.

Shaped for an embedded database shared by several workers later: records are immutable
values (Task, ImageRecord) written whole by create/update, lookups are by id, listing is by
(account, region), and expiry is one call that deletes what is past its time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

from .domain.tasks import Task, expires_at
from .uploads import UploadRecord


@dataclass(frozen=True)
class ImageRecord:
    """One result image: enough to render it again, byte for byte, and to know when it expires."""

    image_id: str
    prompt: str
    seed: int
    index: int
    width: int
    height: int
    expires: float


class Store(Protocol):
    def create(self, task: Task) -> None: ...
    def get(self, task_id: str) -> Task | None: ...
    def update(self, task: Task) -> None: ...
    def list(self, account: str, region: str, keep: Callable[[Task], bool] = ...) -> list[Task]: ...
    def expire(self, now: float) -> int: ...
    def put_image(self, record: ImageRecord) -> None: ...
    def get_image(self, image_id: str) -> ImageRecord | None: ...
    def put_upload(self, record: UploadRecord) -> bool: ...
    def get_upload(self, key: str) -> UploadRecord | None: ...
    def clear(self) -> None: ...


class MemoryStore:
    """Dicts by id (O(1) lookups) and expiry queues in time order (amortised O(1) expiry).

    Records are created in clock order and the clock only moves forward, so each queue is
    already sorted as long as every record of a kind lives equally long (tasks: the task TTL;
    images: until the latest moment any URL to them can still be valid).
    """

    def __init__(self, task_ttl: float):
        self.task_ttl = task_ttl
        self.clear()

    def clear(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._by_owner: dict[tuple[str, str], dict[str, None]] = {}
        self._task_expiry: deque[tuple[float, str]] = deque()
        self._images: dict[str, ImageRecord] = {}
        self._image_expiry: deque[tuple[float, str]] = deque()
        self._uploads: dict[str, UploadRecord] = {}
        self._upload_expiry: deque[tuple[float, str]] = deque()

    def create(self, task: Task) -> None:
        if task.task_id in self._tasks:
            raise KeyError(f"task {task.task_id} exists")
        self._tasks[task.task_id] = task
        self._by_owner.setdefault((task.account, task.region), {})[task.task_id] = None
        self._task_expiry.append((expires_at(task, self.task_ttl), task.task_id))

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def update(self, task: Task) -> None:
        if task.task_id not in self._tasks:
            raise KeyError(f"task {task.task_id} does not exist")
        self._tasks[task.task_id] = task

    def list(self, account: str, region: str, keep: Callable[[Task], bool] = lambda task: True) -> list[Task]:
        """The owner's tasks, newest first."""
        ids = self._by_owner.get((account, region), {})
        return [t for t in (self._tasks[i] for i in reversed(ids)) if keep(t)]

    def expire(self, now: float) -> int:
        removed = 0
        while self._task_expiry and self._task_expiry[0][0] <= now:
            _, task_id = self._task_expiry.popleft()
            task = self._tasks.pop(task_id, None)
            if task is not None:
                self._by_owner[(task.account, task.region)].pop(task_id, None)
                removed += 1
        while self._image_expiry and self._image_expiry[0][0] <= now:
            self._images.pop(self._image_expiry.popleft()[1], None)
        while self._upload_expiry and self._upload_expiry[0][0] <= now:
            self._uploads.pop(self._upload_expiry.popleft()[1], None)
        return removed

    def put_image(self, record: ImageRecord) -> None:
        self._images[record.image_id] = record
        self._image_expiry.append((record.expires, record.image_id))

    def get_image(self, image_id: str) -> ImageRecord | None:
        return self._images.get(image_id)

    def put_upload(self, record: UploadRecord) -> bool:
        """False (and nothing stored) when the key exists: uploads forbid overwriting."""
        if record.key in self._uploads:
            return False
        self._uploads[record.key] = record
        self._upload_expiry.append((record.expires, record.key))
        return True

    def get_upload(self, key: str) -> UploadRecord | None:
        return self._uploads.get(key)
