"""The fake's state in Redis: fakes on several machines behind one load balancer, one truth.

Every key starts with a prefix (default "dashscope-mock:", or ?prefix=... in the URL), so one
Redis database can hold several fakes' states apart. Records are JSON strings; the task list's
indexes are sorted sets per facet, as MemoryStore's lists: (account, region, model or any, key
id or any, status or any), scored by submit time, whose members ("<creation sequence>:<id>")
keep creation order among equal times. Expiry queues and the schedule of status changes are
sorted sets too, so a poll, a cancel, a page and an expiry batch each cost O(log n) plus their
size, whatever the number of tasks stored.

Atomicity: a change that reads before it writes (a task's status moving between indexes, a cell)
runs under WATCH/MULTI and is retried if another client touched the keys meanwhile; taking due
status changes is one Lua script; atomic(scope) is a lock (SET NX PX, released by a
compare-and-delete script) held through a whole verb. Every socket operation has a timeout,
and a failure is StoreUnavailable (503), never a hang: the next command reconnects.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from ..domain.tasks import PENDING, RUNNING, TERMINAL, Task, expires_at, next_change
from ..store import ImageRecord, TaskQuery
from ..uploads import UploadRecord
from . import SCHEMA_VERSION, SharedStore, StoreUnavailable, shown
from .records import image_from_json, image_to_json, task_from_json, task_to_json, upload_from, upload_meta

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as missing:  # an extra: pip install 'dashscope-image-kit[redis]'
    raise ValueError("redis:// stores need the redis client: pip install 'dashscope-image-kit[redis]'") from missing

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_PREFIX = "dashscope-mock:"
SOCKET_TIMEOUT_SECONDS = 2.0  # any one command: past it, the request gets a 503
LOCK_TTL_MS = 10_000          # a lock outlives no crashed holder by more than this
LOCK_WAIT_SECONDS = 5.0       # how long a verb waits for another's lock before a 503
WATCH_RETRIES = 1000
_ANY = "\x00"  # a facet's "any" (None): no model, key id or status is this

# Take up to ARGV[2] due ids (score <= ARGV[1]) off the schedule, atomically.
_POP_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""
# Delete every key matching ARGV[1] but those starting with one of ARGV[2..]: in one script, so
# that no other worker's write lands halfway through a reset (KEYS blocks the server while it
# runs, which a fake's reset may).
_CLEAR = """
for _, key in ipairs(redis.call('KEYS', ARGV[1])) do
  local kept = false
  for i = 2, #ARGV do
    if string.sub(key, 1, #ARGV[i]) == ARGV[i] then kept = true end
  end
  if not kept then redis.call('DEL', key) end
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _guarded(method: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        except redis.ResponseError as exc:  # LOADING, MISCONF, READONLY ...: the server cannot serve now
            raise StoreUnavailable(f"redis: {exc}") from exc

    return guarded


def _score(value: float) -> str:
    return "-inf" if value == float("-inf") else "+inf" if value == float("inf") else repr(value)


class RedisStore(SharedStore):
    def __init__(self, url: str, task_ttl: float):
        self.url, self.task_ttl = url, task_ttl
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.prefix = query.pop("prefix", DEFAULT_PREFIX)
        rest = urlunsplit(parts._replace(query=urlencode(query)))
        if parts.scheme == "unix":  # urlunsplit writes unix:/path, which redis-py refuses
            rest = f"unix://{parts.path}" + (f"?{urlencode(query)}" if query else "")
        try:
            self._client = redis.Redis.from_url(
                rest, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 1), health_check_interval=0)
            pool = self._client.connection_pool  # the URL's options are only tried on connecting: try them now
            pool.connection_class(**pool.connection_kwargs)
        except (ValueError, TypeError) as exc:  # TypeError: an option redis-py does not take (?foo=x)
            raise ValueError(f"store {shown(url)}: {exc}") from exc
        self._pop_due = self._client.register_script(_POP_DUE)
        self._release = self._client.register_script(_RELEASE)
        self._clear = self._client.register_script(_CLEAR)
        self._held: dict[str, int] = {}  # scope -> nesting, of the locks this process holds
        self._lock = threading.RLock()
        try:
            self.created = self._prepare()
        except BaseException:
            self._client.close()
            raise

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @_guarded
    def _prepare(self) -> bool:
        meta = self._k("meta")
        if self._client.hsetnx(meta, "schema_version", SCHEMA_VERSION):
            return True
        found = self._client.hget(meta, "schema_version")
        self.check_version(int(found) if found is not None else None)
        return False

    def close(self) -> None:
        self._client.close()

    # --- locks -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self, scope: str = "") -> Iterator[None]:
        with self._lock:
            if self._held.get(scope):
                self._held[scope] += 1
                try:
                    yield
                finally:
                    self._held[scope] -= 1
                return
            key, token = self._k("lock", scope), secrets.token_hex(8)
            self._acquire(key, token)
            self._held[scope] = 1
            try:
                yield
            finally:
                del self._held[scope]
                with contextlib.suppress(redis.RedisError):  # if it fails, the lock expires by itself
                    self._release(keys=[key], args=[token])

    @_guarded
    def _acquire(self, key: str, token: str) -> None:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not self._client.set(key, token, nx=True, px=LOCK_TTL_MS):
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"redis: {key} stayed locked for {LOCK_WAIT_SECONDS} s")
            time.sleep(0.0005)  # the holder is another process's verb: a few milliseconds at most

    def _watching(self, keys: list[str], act: Callable[[Any], T]) -> T:
        """act(pipeline) under WATCH of `keys`, again while another client changes them first."""
        for _ in range(WATCH_RETRIES):
            with self._client.pipeline(transaction=True) as typed:
                pipe: Any = typed  # redis-py leaves watch() untyped
                try:
                    pipe.watch(*keys)
                    return act(pipe)
                except redis.WatchError:
                    continue
        raise StoreUnavailable(f"redis: {keys[0]} kept changing")

    # --- tasks -----------------------------------------------------------------------------

    def _facets(self, task: Task, status: str | None) -> list[str]:
        return [self._k("ix", "\x1f".join((task.account, task.region, model, key_id, status or _ANY)))
                for model in (_ANY, task.model) for key_id in (_ANY, task.api_key_id)]

    @_guarded
    def create(self, task: Task) -> None:
        member = f"{int(self._client.incr(self._k('seq'))):016d}:{task.task_id}"
        record = self._k("t", task.task_id)

        def act(pipe: Any) -> None:
            if pipe.exists(record):
                raise KeyError(f"task {task.task_id} exists")
            pipe.multi()
            pipe.set(record, task_to_json(task))
            pipe.hset(self._k("members"), task.task_id, member)
            for facet in self._facets(task, None) + self._facets(task, task.status):
                pipe.zadd(facet, {member: task.submit_time})
            pipe.zadd(self._k("expiry", "tasks"), {task.task_id: expires_at(task, self.task_ttl)})
            when = next_change(task)
            if when is not None:
                pipe.zadd(self._k("changes"), {task.task_id: when})
            pipe.execute()

        self._watching([record], act)

    @_guarded
    def get(self, task_id: str) -> Task | None:
        raw = self._client.get(self._k("t", task_id))
        return task_from_json(raw) if raw is not None else None

    @_guarded
    def update(self, task: Task) -> None:
        record = self._k("t", task.task_id)

        def act(pipe: Any) -> None:
            raw, member = pipe.get(record), pipe.hget(self._k("members"), task.task_id)
            if raw is None or member is None:
                raise KeyError(f"task {task.task_id} does not exist")
            old = task_from_json(raw)
            if _behind(task, old):
                return  # another worker moved it on first (a poll beat the sweep): keep the later state
            pipe.multi()
            pipe.set(record, task_to_json(task))
            if old.status != task.status:
                for facet in self._facets(old, old.status):
                    pipe.zrem(facet, member)
                for facet in self._facets(task, task.status):
                    pipe.zadd(facet, {member: task.submit_time})
            when = next_change(task)
            if when is None:
                pipe.zrem(self._k("changes"), task.task_id)
            else:
                pipe.zadd(self._k("changes"), {task.task_id: when})
            pipe.execute()

        self._watching([record], act)

    @_guarded
    def query(self, query: TaskQuery, offset: int = 0, limit: int = 0) -> tuple[list[Task], int]:
        facet = self._k("ix", "\x1f".join((query.account, query.region, query.model or _ANY, query.api_key_id or _ANY,
                                           query.status or _ANY)))
        low, high = _score(query.submitted_from), _score(query.submitted_to)
        total = int(self._client.zcount(facet, low, high))
        if limit <= 0 or offset >= total:
            return [], total
        members = self._client.zrevrangebyscore(facet, high, low, start=offset, num=limit)
        ids = [_text(m).partition(":")[2] for m in members]
        raws = self._client.mget([self._k("t", i) for i in ids]) if ids else []
        return [task_from_json(raw) for raw in raws if raw is not None], total

    @_guarded
    def due(self, now: float, limit: int) -> list[Task]:
        ids = self._pop_due(keys=[self._k("changes")], args=[repr(now), limit])
        raws = self._client.mget([self._k("t", _text(i)) for i in ids]) if ids else []
        return [task_from_json(raw) for raw in raws if raw is not None]

    # --- expiry ----------------------------------------------------------------------------

    @_guarded
    def expire(self, now: float, limit: int | None = None) -> int:
        if limit is not None and limit <= 0:
            return 0
        kinds = (("tasks", self._drop_tasks), ("images", self._drop_images), ("uploads", self._drop_uploads))
        # Every request sweeps a little on its way: one round trip asks all three queues.
        with self._client.pipeline(transaction=False) as pipe:
            for kind, _ in kinds:
                pipe.zrangebyscore(self._k("expiry", kind), "-inf", repr(now), start=0 if limit is not None else None, num=limit)
            found = pipe.execute()
        budget, removed = limit, 0
        for (_, drop), members in zip(kinds, found, strict=True):
            ids = [_text(i) for i in members][:budget]
            if ids:
                drop(ids)
                removed += len(ids)
                budget = None if budget is None else budget - len(ids)
            if budget is not None and budget <= 0:
                break
        return removed

    def _drop_tasks(self, ids: list[str]) -> None:
        records = [self._k("t", i) for i in ids]

        def act(pipe: Any) -> None:
            raws, members = pipe.mget(records), pipe.hmget(self._k("members"), ids)
            pipe.multi()
            for raw, member in zip(raws, members, strict=True):
                if raw is not None and member is not None:
                    task = task_from_json(raw)
                    for facet in self._facets(task, None) + self._facets(task, task.status):
                        pipe.zrem(facet, member)
            pipe.delete(*records)
            pipe.hdel(self._k("members"), *ids)
            pipe.zrem(self._k("expiry", "tasks"), *ids)
            pipe.zrem(self._k("changes"), *ids)
            pipe.execute()

        self._watching(records, act)

    def _drop_images(self, ids: list[str]) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(*[self._k("i", i) for i in ids])
            pipe.zrem(self._k("expiry", "images"), *ids)
            pipe.execute()

    def _drop_uploads(self, keys: list[str]) -> None:
        records = [self._k("u", key) for key in keys]

        def act(pipe: Any) -> None:
            metas = [pipe.hget(record, "meta") for record in records]
            pipe.multi()
            for meta in metas:
                if meta is not None:
                    found = orjson.loads(meta)
                    pipe.decrby(self._k("ub", found["directory"]), found["size"])
            pipe.delete(*records)
            pipe.zrem(self._k("expiry", "uploads"), *keys)
            pipe.execute()

        self._watching(records, act)

    # --- images and uploads ----------------------------------------------------------------

    @_guarded
    def put_image(self, record: ImageRecord) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._k("i", record.image_id), image_to_json(record))
            pipe.zadd(self._k("expiry", "images"), {record.image_id: record.expires})
            pipe.execute()

    @_guarded
    def get_image(self, image_id: str) -> ImageRecord | None:
        raw = self._client.get(self._k("i", image_id))
        return image_from_json(raw) if raw is not None else None

    @_guarded
    def put_upload(self, record: UploadRecord) -> bool:
        key = self._k("u", record.key)
        meta = orjson.dumps({**orjson.loads(upload_meta(record)), "size": len(record.data)})

        def act(pipe: Any) -> bool:
            if pipe.exists(key):
                return False
            pipe.multi()
            pipe.hset(key, mapping={"meta": meta, "data": record.data})
            pipe.incrby(self._k("ub", record.directory), len(record.data))
            pipe.zadd(self._k("expiry", "uploads"), {record.key: record.expires})
            pipe.execute()
            return True

        return self._watching([key], act)

    @_guarded
    def get_upload(self, key: str) -> UploadRecord | None:
        meta, data = self._client.hmget(self._k("u", key), ["meta", "data"])
        if meta is None or data is None:
            return None
        found = orjson.loads(meta)
        found.pop("size", None)
        return upload_from(orjson.dumps(found), data if isinstance(data, bytes) else data.encode())

    @_guarded
    def uploaded_bytes(self, directory: str) -> int:
        return int(self._client.get(self._k("ub", directory)) or 0)

    @_guarded
    def counts(self) -> dict[str, int]:
        upload_bytes = sum(int(v or 0) for batch in self._batches(self._k("ub", "*")) for v in self._client.mget(batch))
        return {"tasks": int(self._client.hlen(self._k("members"))), "images": int(self._client.zcard(self._k("expiry", "images"))),
                "uploads": int(self._client.zcard(self._k("expiry", "uploads"))), "upload_bytes": upload_bytes}

    def _batches(self, pattern: str) -> Iterator[list[bytes]]:
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                yield batch
                batch = []
        if batch:
            yield batch

    @_guarded
    def clear(self) -> None:
        self._clear(keys=[], args=[_glob(self.prefix) + "*", self._k("meta"), self._k("c", ""), self._k("lock", "")])

    # --- cells -----------------------------------------------------------------------------

    @_guarded
    def read(self, name: str) -> Any:
        raw = self._client.get(self._k("c", name))
        return orjson.loads(raw) if raw is not None else None

    @_guarded
    def change(self, name: str, change: Callable[[Any], tuple[Any, T]]) -> T:
        key = self._k("c", name)

        def act(pipe: Any) -> T:
            raw = pipe.get(key)
            old = orjson.loads(raw) if raw is not None else None
            new, result = change(old)
            if new != old:
                pipe.multi()
                if new is None:
                    pipe.delete(key)
                else:
                    pipe.set(key, orjson.dumps(new))
                pipe.execute()
            return result

        return self._watching([key], act)

    @_guarded
    def drop(self, prefix: str) -> None:
        for batch in self._batches(_glob(self._k("c", prefix)) + "*"):
            self._client.delete(*batch)


def _behind(new: Task, old: Task) -> bool:
    """Whether `new` is an earlier state than the stored `old`: statuses only move forward."""
    return (old.status in TERMINAL and new.status != old.status) or (old.status == RUNNING and new.status == PENDING)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _glob(text: str) -> str:
    """`text` as a literal in a SCAN MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
