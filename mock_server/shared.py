"""The clock, scenarios, rate limits and usage of a fake whose state is in a SharedStore.

Each is the in-memory class of its module with its state moved into the store's cells: a read
for what only looks (now(), a free quota), an atomic change for what moves (a scenario's count,
a bucket's tokens, a charge). The arithmetic stays the in-memory class's own: a change loads
the state into a throwaway instance, calls the same method on it and writes the result back,
so the shared fake cannot drift from the one in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from dashscope_schemas import Catalog

from .clock import ControllableClock
from .domain.billing import Ledger
from .domain.limits import PERIOD_SECONDS, Bucket, RateLimiter, take
from .scenarios import Scenario, ScenarioBook
from .stores import SharedStore, StoreUnavailable

T = TypeVar("T")
CLOCK, SCENARIOS, USAGE, BUCKETS = "clock", "scenarios", "usage", "bucket:"


class SharedClock(ControllableClock):
    """One clock for every worker: advance, freeze and unfreeze are seen by all at once."""

    def __init__(self, cells: SharedStore, wall: Callable[[], float] = time.time):
        super().__init__(wall)
        self.cells = cells
        self._last: Any = None  # the state last read

    def _current(self) -> ControllableClock:
        try:
            state = self._last = self.cells.read(CLOCK)
        except StoreUnavailable:
            # Nobody can move the clock while the store is away, so the state last read is still
            # true; reading the time (the request journal does, before any handler) never fails:
            # the request goes on to the store, and its 503.
            state = self._last
        return ControllableClock.from_state(tuple(state) if state else None, self._wall)

    def _apply(self, act: Callable[[ControllableClock], T]) -> T:
        def change(state: Any) -> tuple[Any, T]:
            clock = ControllableClock.from_state(tuple(state) if state else None, self._wall)
            result = act(clock)
            frozen_at, offset = clock.state()
            return (None if frozen_at is None and offset == 0.0 else [frozen_at, offset]), result

        return self.cells.change(CLOCK, change)

    def now(self) -> float:
        return self._current().now()

    @property
    def frozen(self) -> bool:
        return self._current().frozen

    def advance(self, seconds: float) -> float:
        return self._apply(lambda clock: clock.advance(seconds))

    def freeze(self) -> float:
        return self._apply(lambda clock: clock.freeze())

    def unfreeze(self) -> float:
        return self._apply(lambda clock: clock.unfreeze())

    def reset(self) -> None:
        self._apply(lambda clock: clock.reset())


class SharedScenarioBook(ScenarioBook):
    """The scenarios and their counts in one cell: a `times: 1` scenario fires once across workers."""

    def __init__(self, catalog: Catalog, cells: SharedStore):
        super().__init__(catalog)
        self.cells = cells

    def _current(self) -> ScenarioBook:
        return ScenarioBook.from_state(self.catalog, self.cells.read(SCENARIOS))

    def _apply(self, act: Callable[[ScenarioBook], T]) -> T:
        def change(state: Any) -> tuple[Any, T]:
            book = ScenarioBook.from_state(self.catalog, state)
            result = act(book)
            return book.to_state(), result

        return self.cells.change(SCENARIOS, change)

    def add(self, data: Any) -> Scenario:
        return self._apply(lambda book: book.add(data))

    def all(self) -> list[Scenario]:
        return self._current().all()

    def remove(self, scenario_id: str) -> bool:
        return self._apply(lambda book: book.remove(scenario_id))

    def clear(self) -> None:
        self._apply(lambda book: book.clear())

    def take(self, facts: dict[str, str | None], chosen: str | None = None) -> Scenario | None:
        # Most requests meet no scenario: a read says so without taking the write lock. One that
        # does is taken again inside the transaction, where the count is exact.
        if self._current().take(facts, chosen) is None:
            return None
        return self._apply(lambda book: book.take(facts, chosen))


def _bucket_cell(key: Hashable) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return BUCKETS + "\x1f".join(str(part) for part in parts)


class SharedRateLimiter(RateLimiter):
    """A cell per bucket: an account's limit is one limit, whichever worker it calls."""

    def __init__(self, cells: SharedStore, scale: float = 1.0):
        super().__init__(scale)
        self.cells = cells

    def allow(self, key: Hashable, requests: int, per: str, now: float) -> bool:
        capacity = requests * self.scale

        def change(state: Any) -> tuple[Any, bool]:
            bucket = Bucket(*state) if state else Bucket(capacity, capacity / PERIOD_SECONDS[per], capacity, now)
            allowed, after = take(bucket, now)
            return [after.capacity, after.per_second, after.tokens, after.updated], allowed

        return self.cells.change(_bucket_cell(key), change)

    def clear(self) -> None:
        self.cells.drop(BUCKETS)


class SharedLedger(Ledger):
    """Usage, free quotas and the free-tier-only accounts in one cell."""

    def __init__(self, cells: SharedStore):  # no Ledger.__init__: the state is in the store
        self.cells = cells

    def _current(self) -> Ledger:
        return Ledger.from_state(self.cells.read(USAGE))

    def _apply(self, act: Callable[[Ledger], T]) -> T:
        def change(state: Any) -> tuple[Any, T]:
            ledger = Ledger.from_state(state)
            result = act(ledger)
            return ledger.to_state(), result

        return self.cells.change(USAGE, change)

    @property
    def free_tier_only(self) -> set[str]:
        """A copy: change it with set_free_tier_only(), or set it whole."""
        return self._current().free_tier_only

    @free_tier_only.setter
    def free_tier_only(self, accounts: set[str]) -> None:
        def replace(ledger: Ledger) -> None:
            ledger.free_tier_only = set(accounts)

        self._apply(replace)

    def free_left(self, account: str, region: str, model: str, quota: int | None) -> int | None:
        return self._current().free_left(account, region, model, quota)

    def refuses(self, account: str, region: str, model: str, quota: int | None) -> bool:
        return self._current().refuses(account, region, model, quota)

    def charge(self, account: str, region: str, model: str, images: int, price: float | None, quota: int | None) -> None:
        if images > 0:
            self._apply(lambda ledger: ledger.charge(account, region, model, images, price, quota))

    def refund(self, account: str, region: str, model: str, images: int, price: float | None) -> None:
        self._apply(lambda ledger: ledger.refund(account, region, model, images, price))

    def report(self, quotas: dict[tuple[str, str, str], int | None]) -> list[dict[str, Any]]:
        return self._current().report(quotas)

    def clear(self) -> None:
        self.cells.change(USAGE, lambda state: (None, None))

    def set_free_tier_only(self, account: str, enabled: bool) -> None:
        self._apply(lambda ledger: ledger.set_free_tier_only(account, enabled))
