"""The fake's records as JSON, for stores that keep them outside the process (SQLite, Redis).

Written here, next to the stores, rather than on the domain types: a record's stored form is the
store's business. Fields are read by name, so a field added to Task later with a default still
reads back from a record written before it existed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from ..domain.tasks import ImageOutcome, Task, Timing
from ..store import ImageRecord
from ..uploads import UploadRecord

_TASK_FIELDS = tuple(f.name for f in dataclasses.fields(Task))


def task_to_json(task: Task) -> bytes:
    data: dict[str, Any] = {name: getattr(task, name) for name in _TASK_FIELDS}
    data["timing"] = [task.timing.mode, task.timing.pending, task.timing.running]
    data["outcomes"] = [[o.image_id, o.code, o.message] for o in task.outcomes]
    data["failure"] = list(task.failure) if task.failure is not None else None
    return orjson.dumps(data)


def task_from_json(raw: bytes | str) -> Task:
    data = orjson.loads(raw)
    mode, pending, running = data["timing"]
    data["timing"] = Timing(mode, pending, running)
    data["outcomes"] = tuple(ImageOutcome(*outcome) for outcome in data["outcomes"])
    data["failure"] = tuple(data["failure"]) if data.get("failure") is not None else None
    return Task(**{name: value for name, value in data.items() if name in _TASK_FIELDS})


def image_to_json(record: ImageRecord) -> bytes:
    return orjson.dumps(dataclasses.asdict(record))


def image_from_json(raw: bytes | str) -> ImageRecord:
    return ImageRecord(**orjson.loads(raw))


def upload_meta(record: UploadRecord) -> bytes:
    """Everything of an upload but its bytes, which stores keep as a blob beside it."""
    return orjson.dumps({f.name: getattr(record, f.name) for f in dataclasses.fields(UploadRecord) if f.name != "data"})


def upload_from(meta: bytes | str, data: bytes) -> UploadRecord:
    return UploadRecord(data=data, **orjson.loads(meta))
