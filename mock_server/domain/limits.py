"""Rate limits: token buckets on the fake's clock. Pure arithmetic plus a dict of buckets.

"N requests per second" is a bucket holding N tokens that refills at N per second; per minute,
N tokens refilling at N per 60 seconds. Virtual time refills them, so a test that advances the
clock sees the quota come back without waiting.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

PERIOD_SECONDS = {"second": 1.0, "minute": 60.0}


@dataclass(frozen=True)
class Bucket:
    capacity: float
    per_second: float
    tokens: float
    updated: float

    def refilled(self, now: float) -> Bucket:
        elapsed = max(0.0, now - self.updated)
        return Bucket(self.capacity, self.per_second, min(self.capacity, self.tokens + elapsed * self.per_second), max(now, self.updated))


def take(bucket: Bucket, now: float) -> tuple[bool, Bucket]:
    """(allowed, the bucket after this request)."""
    current = bucket.refilled(now)
    if current.tokens >= 1.0:
        return True, Bucket(current.capacity, current.per_second, current.tokens - 1.0, current.updated)
    return False, current


class RateLimiter:
    """Buckets by key, e.g. (account, region, model); `scale` multiplies every limit."""

    def __init__(self, scale: float = 1.0):
        if scale <= 0:
            raise ValueError("the rate-limit scale must be positive")
        self.scale = scale
        self._buckets: dict[Hashable, Bucket] = {}

    def allow(self, key: Hashable, requests: int, per: str, now: float) -> bool:
        capacity = requests * self.scale
        bucket = self._buckets.get(key) or Bucket(capacity, capacity / PERIOD_SECONDS[per], capacity, now)
        allowed, self._buckets[key] = take(bucket, now)
        return allowed

    def concurrency_allows(self, active: int, limit: int | None) -> bool:
        return limit is None or active < limit * self.scale

    def clear(self) -> None:
        self._buckets.clear()
