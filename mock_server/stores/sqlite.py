"""The fake's state in one SQLite file: several workers on one machine, and a kill -9 loses
nothing that was answered.

WAL mode with synchronous=NORMAL: a commit is in the WAL (the operating system's cache) before
the answer goes out, so a killed process loses nothing it acknowledged; only a crash of the
machine itself (power, kernel) can lose the last commits, which a fake for tests can afford.
Writers take the database lock with BEGIN IMMEDIATE, so a read-modify-write (a scenario's count,
a rate-limit bucket, admission through task creation) is never interleaved with another
worker's; readers never wait (WAL).

Tasks are rows with the columns their indexes need (owner, status, model, key, submit time,
expiry, next status change) and the whole record as JSON: a poll or cancel is a primary-key
lookup, a list page an index range, expiry a bounded DELETE on the expiry index.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson

from ..domain.tasks import Task, expires_at, next_change
from ..store import ImageRecord, TaskQuery
from ..uploads import UploadRecord
from . import SCHEMA_VERSION, SharedStore, StoreUnavailable
from .records import image_from_json, image_to_json, task_from_json, task_to_json, upload_from, upload_meta

P = ParamSpec("P")
T = TypeVar("T")
# How long a writer waits for another worker's transaction before the request gets a 503.
BUSY_TIMEOUT_SECONDS = 5.0

_SCHEMA = """
CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tasks(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order: ties of submit time, newest first
    id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL, region TEXT NOT NULL, model TEXT NOT NULL, api_key_id TEXT NOT NULL,
    status TEXT NOT NULL, submit_time REAL NOT NULL, expires REAL NOT NULL,
    change_at REAL,  -- when its status changes by itself (clock-timed tasks), else NULL
    body BLOB NOT NULL);
-- One index per mix of list filters, each ending in (submit_time, seq): every page is a range.
CREATE INDEX tasks_by_owner ON tasks(account, region, submit_time);
CREATE INDEX tasks_by_status ON tasks(account, region, status, submit_time);
CREATE INDEX tasks_by_model ON tasks(account, region, model, submit_time);
CREATE INDEX tasks_by_model_status ON tasks(account, region, model, status, submit_time);
CREATE INDEX tasks_by_key ON tasks(account, region, api_key_id, submit_time);
CREATE INDEX tasks_by_key_status ON tasks(account, region, api_key_id, status, submit_time);
CREATE INDEX tasks_by_expiry ON tasks(expires);
CREATE INDEX tasks_by_change ON tasks(change_at) WHERE change_at IS NOT NULL;
CREATE TABLE images(id TEXT PRIMARY KEY, expires REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX images_by_expiry ON images(expires);
CREATE TABLE uploads(key TEXT PRIMARY KEY, directory TEXT NOT NULL, size INTEGER NOT NULL, expires REAL NOT NULL,
                     meta BLOB NOT NULL, data BLOB NOT NULL);
CREATE INDEX uploads_by_expiry ON uploads(expires);
CREATE INDEX uploads_by_directory ON uploads(directory);
CREATE TABLE cells(name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


def _guarded(method: Callable[P, T]) -> Callable[P, T]:
    """The database failing (locked past the timeout, unreadable, gone) is a 503, not a 500."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    return guarded


class SQLiteStore(SharedStore):
    def __init__(self, path: str | Path, task_ttl: float, *, url: str | None = None):
        self.path, self.task_ttl = Path(path), task_ttl
        self.url = url or f"sqlite://{self.path}"
        self._lock = threading.RLock()
        self._depth = 0  # nesting of atomic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ValueError(f"store {self.url}: cannot open {self.path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self.created = self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ValueError(f"store {self.url}: not a dashscope-mock store ({exc})") from exc
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> bool:
        """Make the schema in a new file; refuse one of a newer version. True: made now."""
        with self.atomic():
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
                for statement in _SCHEMA.split(";\n"):  # not executescript(): it would commit first
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return True
            row = self._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            self.check_version(int(row[0]) if row else None)
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def atomic(self, scope: str = "") -> Iterator[None]:
        # The whole database is one lock (BEGIN IMMEDIATE): `scope` needs no finer grain here.
        with self._lock:
            if self._depth == 0:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise StoreUnavailable(f"sqlite: {exc}") from exc
            self._depth += 1
            failed: BaseException | None = None
            try:
                yield
            except BaseException as exc:
                failed = exc
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._end(failed)

    def _end(self, failed: BaseException | None) -> None:
        # An error answer (a refusal, a scenario's failure) keeps what happened before it, as in
        # memory: a one-shot scenario that failed a request is used up. Only a store failure
        # undoes the transaction.
        if isinstance(failed, (sqlite3.Error, StoreUnavailable)):
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if failed is None:
                raise StoreUnavailable(f"sqlite: {exc}") from exc

    def _rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    # --- tasks -----------------------------------------------------------------------------

    @_guarded
    def create(self, task: Task) -> None:
        with self.atomic():
            try:
                self._db.execute(
                    "INSERT INTO tasks(id, account, region, model, api_key_id, status, submit_time, expires, change_at, body)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (task.task_id, task.account, task.region, task.model, task.api_key_id, task.status, task.submit_time,
                     expires_at(task, self.task_ttl), next_change(task), task_to_json(task)))
            except sqlite3.IntegrityError:
                raise KeyError(f"task {task.task_id} exists") from None

    @_guarded
    def get(self, task_id: str) -> Task | None:
        rows = self._rows("SELECT body FROM tasks WHERE id = ?", (task_id,))
        return task_from_json(rows[0][0]) if rows else None

    @_guarded
    def update(self, task: Task) -> None:
        with self.atomic():
            changed = self._db.execute("UPDATE tasks SET status = ?, change_at = ?, body = ? WHERE id = ?",
                                       (task.status, next_change(task), task_to_json(task), task.task_id)).rowcount
        if not changed:
            raise KeyError(f"task {task.task_id} does not exist")

    @_guarded
    def query(self, query: TaskQuery, offset: int = 0, limit: int = 0) -> tuple[list[Task], int]:
        """Newest first, ties in creation order reversed, as MemoryStore; the page and the count
        come from one index range (the planner picks the index of the filters given)."""
        where, parameters = ["account = ?", "region = ?"], [query.account, query.region]
        for column, value in (("model", query.model), ("api_key_id", query.api_key_id), ("status", query.status)):
            if value is not None:
                where.append(f"{column} = ?")
                parameters.append(value)
        where.append("submit_time BETWEEN ? AND ?")
        condition = " AND ".join(where)
        bounds = (*parameters, query.submitted_from, query.submitted_to)
        with self._lock:
            total = int(self._db.execute(f"SELECT count(*) FROM tasks WHERE {condition}", bounds).fetchone()[0])
            if limit <= 0 or offset >= total:
                return [], total
            rows = self._db.execute(f"SELECT body FROM tasks WHERE {condition} ORDER BY submit_time DESC, seq DESC"
                                    " LIMIT ? OFFSET ?", (*bounds, limit, offset)).fetchall()
        return [task_from_json(row[0]) for row in rows], total

    @_guarded
    def due(self, now: float, limit: int) -> list[Task]:
        with self.atomic():
            rows = self._db.execute("SELECT id, body FROM tasks WHERE change_at <= ? ORDER BY change_at LIMIT ?",
                                    (now, limit)).fetchall()
            self._db.executemany("UPDATE tasks SET change_at = NULL WHERE id = ?", [(row[0],) for row in rows])
        return [task_from_json(row[1]) for row in rows]

    # --- expiry ----------------------------------------------------------------------------

    @_guarded
    def expire(self, now: float, limit: int | None = None) -> int:
        budget = -1 if limit is None else limit  # LIMIT -1: no limit
        removed = 0
        with self.atomic():
            for table in ("tasks", "images", "uploads"):
                if budget == 0:
                    break
                rowid = "seq" if table == "tasks" else "rowid"
                done = self._db.execute(f"DELETE FROM {table} WHERE {rowid} IN"
                                        f" (SELECT {rowid} FROM {table} WHERE expires <= ? LIMIT ?)", (now, budget)).rowcount
                removed += done
                budget = -1 if budget < 0 else budget - done
        return removed

    # --- images and uploads ----------------------------------------------------------------

    @_guarded
    def put_image(self, record: ImageRecord) -> None:
        with self.atomic():
            self._db.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?)", (record.image_id, record.expires, image_to_json(record)))

    @_guarded
    def get_image(self, image_id: str) -> ImageRecord | None:
        rows = self._rows("SELECT body FROM images WHERE id = ?", (image_id,))
        return image_from_json(rows[0][0]) if rows else None

    @_guarded
    def put_upload(self, record: UploadRecord) -> bool:
        with self.atomic():
            try:
                self._db.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                                 (record.key, record.directory, len(record.data), record.expires, upload_meta(record), record.data))
            except sqlite3.IntegrityError:
                return False
        return True

    @_guarded
    def get_upload(self, key: str) -> UploadRecord | None:
        rows = self._rows("SELECT meta, data FROM uploads WHERE key = ?", (key,))
        return upload_from(rows[0][0], bytes(rows[0][1])) if rows else None

    @_guarded
    def uploaded_bytes(self, directory: str) -> int:
        return int(self._rows("SELECT coalesce(sum(size), 0) FROM uploads WHERE directory = ?", (directory,))[0][0])

    @_guarded
    def counts(self) -> dict[str, int]:
        with self._lock:
            one = self._db.execute
            return {"tasks": one("SELECT count(*) FROM tasks").fetchone()[0],
                    "images": one("SELECT count(*) FROM images").fetchone()[0],
                    "uploads": one("SELECT count(*) FROM uploads").fetchone()[0],
                    "upload_bytes": one("SELECT coalesce(sum(size), 0) FROM uploads").fetchone()[0]}

    @_guarded
    def clear(self) -> None:
        with self.atomic():
            for table in ("tasks", "images", "uploads"):
                self._db.execute(f"DELETE FROM {table}")

    # --- cells -----------------------------------------------------------------------------

    @_guarded
    def read(self, name: str) -> Any:
        rows = self._rows("SELECT value FROM cells WHERE name = ?", (name,))
        return orjson.loads(rows[0][0]) if rows else None

    @_guarded
    def change(self, name: str, change: Callable[[Any], tuple[Any, T]]) -> T:
        with self.atomic():
            rows = self._db.execute("SELECT value FROM cells WHERE name = ?", (name,)).fetchall()
            old = orjson.loads(rows[0][0]) if rows else None
            new, result = change(old)
            if new is None:
                if rows:
                    self._db.execute("DELETE FROM cells WHERE name = ?", (name,))
            elif new != old:
                self._db.execute("INSERT INTO cells VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                                 (name, orjson.dumps(new)))
        return result

    @_guarded
    def drop(self, prefix: str) -> None:
        with self.atomic():
            # A range on the primary key, not LIKE (whose wildcards a name could contain).
            self._db.execute("DELETE FROM cells WHERE name >= ? AND name < ?", (prefix, prefix + "\U0010ffff"))

    def query_plan(self, query: TaskQuery) -> list[str]:
        """How SQLite answers a page of this query (tests check it is an index search, not a scan)."""
        where = ["account = ?", "region = ?"] + [f"{c} = ?" for c, v in (("model", query.model), ("api_key_id", query.api_key_id),
                                                                         ("status", query.status)) if v is not None]
        parameters = [query.account, query.region] + [v for v in (query.model, query.api_key_id, query.status) if v is not None]
        sql = f"EXPLAIN QUERY PLAN SELECT body FROM tasks WHERE {' AND '.join(where)} AND submit_time BETWEEN ? AND ?" \
              " ORDER BY submit_time DESC, seq DESC LIMIT 10"
        return [str(row[3]) for row in self._rows(sql, (*parameters, -math.inf, math.inf))]
