"""Where the fake's state lives: in this process (memory:, the default), in an SQLite file
(sqlite:///path/state.db) or in a Redis server (redis://host:port/db).

The two outside stores are SharedStores: besides the records of the Store interface (store.py:
tasks, result images, uploads) they keep the rest of the fake's state as small named JSON
documents, "cells" (the clock, the scenarios, rate-limit buckets, usage, the URL signing
secret), each read and changed atomically, so that several workers, or several machines, share
one truth. shared.py has the clock, scenario book, limiter and ledger that keep their state in
cells; the memory path keeps today's in-process classes, at today's speed.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import DashScopeError
from ..store import MemoryStore, Store

T = TypeVar("T")

# The layout of what a SharedStore writes. A store written by a newer version (a larger number)
# is refused rather than misread; an older one is upgraded when this number moves (none yet).
SCHEMA_VERSION = 1
MEMORY = "memory:"
# The catalog's service_unavailable (schemas/error-codes.json): the 503 the SDK retries.
UNAVAILABLE_CODE = "ServiceUnavailable"
UNAVAILABLE_MESSAGE = "Service temporarily unavailable, please try again later."


class StoreUnavailable(DashScopeError):
    """The store did not answer (a Redis restart, a locked or unreadable database): the caller
    gets 503 ServiceUnavailable in the DashScope envelope, and the next request tries again."""

    def __init__(self, detail: str):
        super().__init__(503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE)
        self.detail = detail


class StoreVersionError(ValueError):
    """A store written by a newer version of the fake, whose layout this one cannot know."""


class SharedStore(Store, ABC):
    """A Store several processes share. Records go whole (JSON); every change of a cell is
    atomic (change() reads, applies a pure function and writes in one transaction), and
    atomic() makes a whole verb one unit (admission through task creation), so that a scenario
    with times: 1 fires once and a limit holds across workers."""

    url: str
    created: bool  # this open made the store (the service marks its config scenarios loaded in a cell)

    # The records: the Store interface of store.py, inherited (its methods are this class's
    # abstract ones: mypy refuses a subclass that leaves one out). clear() forgets every task,
    # image and upload; the cells are cleared by their owners.

    # --- cells -----------------------------------------------------------------------------
    @abstractmethod
    def read(self, name: str) -> Any:
        """A cell's JSON value; None when it was never written (or was dropped)."""

    @abstractmethod
    def change(self, name: str, change: Callable[[Any], tuple[Any, T]]) -> T:
        """Atomically: the cell's value goes through `change`, which returns (new value, result);
        the new value is written (None: the cell is dropped) and the result returned. If
        `change` raises, nothing is written."""

    @abstractmethod
    def drop(self, prefix: str) -> None:
        """Forget every cell whose name starts with `prefix`."""

    @abstractmethod
    def atomic(self, scope: str = "") -> AbstractContextManager[None]:
        """Everything inside is one unit against other workers doing the same for `scope` (an
        account, say); nestable. Memory has no need: one event loop runs a verb without a break."""

    @abstractmethod
    def close(self) -> None: ...

    def signing_secret(self) -> str:
        """The store's URL signing secret, made once: URLs signed before a restart, or by another
        worker, stay valid."""
        made = secrets.token_urlsafe(32)
        return self.change("signing_secret", lambda old: (old or made, old or made))

    def check_version(self, found: int | None) -> None:
        if found is not None and found > SCHEMA_VERSION:
            raise StoreVersionError(f"{shown(self.url)}: written by a newer dashscope-mock (store schema {found}; this "
                                    f"version reads up to {SCHEMA_VERSION}); upgrade, or use another store")


def open_store(url: str, task_ttl: float) -> Store:
    """The store a URL names: memory:, sqlite:///absolute/path.db (or sqlite:relative.db), or
    redis://host:port/db. ValueError for a URL of none of these kinds."""
    if url in ("", MEMORY, "memory"):
        return MemoryStore(task_ttl)
    if url.startswith("sqlite:"):
        from .sqlite import SQLiteStore

        path = url.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise ValueError(f"store {url!r}: say which file, e.g. sqlite:///var/lib/dashscope-mock/state.db")
        return SQLiteStore(path, task_ttl, url=url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(url, task_ttl)
    raise ValueError(f"store {shown(url)!r}: use memory:, sqlite:///path/to/state.db or redis://host:port/db")


def shown(url: str) -> str:
    """A store URL as it may be printed: a password in it (redis://:secret@host) masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def is_shared(url: str) -> bool:
    return url not in ("", MEMORY, "memory")
