"""The fake's clock: real time until a test advances or freezes it, then virtual time (frozen, or
running again from there after unfreeze()).

Every time-based behaviour (task transitions, 24-hour expiry, URL lifetimes, later rate
limits) reads this clock, never time.time(), so a test can see a day pass in milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""


# How far the clock may be moved: every time the fake derives from it (result URL expiries, task
# times printed as dates) must stay a valid date; year 3000 leaves centuries of room either way.
LATEST = 32503680000.0  # 3000-01-01T00:00:00Z


class ControllableClock:
    """Follows the wall clock until advance() or freeze() stops it. unfreeze() lets it run at wall
    speed again from where it stands (an offset from the wall clock: it never jumps back, so no
    time it has given out lies in its future); reset() returns it to real time."""

    def __init__(self, wall: Callable[[], float] = time.time):
        self._wall = wall
        self._frozen_at: float | None = None
        self._offset = 0.0  # seconds ahead of (or behind) the wall clock while running

    def now(self) -> float:
        return self._wall() + self._offset if self._frozen_at is None else self._frozen_at

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        if self.now() + seconds > LATEST:
            raise ValueError(f"the clock cannot pass the year 3000 (at most {LATEST - self.now():.0f} seconds more)")
        self._frozen_at = self.now() + seconds
        return self._frozen_at

    def freeze(self) -> float:
        self._frozen_at = self.now()
        return self._frozen_at

    def unfreeze(self) -> float:
        if self._frozen_at is not None:
            self._offset = self._frozen_at - self._wall()
            self._frozen_at = None
        return self.now()

    def reset(self) -> None:
        self._frozen_at = None
        self._offset = 0.0

    def state(self) -> tuple[float | None, float]:
        """(frozen at, offset from the wall clock): all there is to it, for a store to keep."""
        return self._frozen_at, self._offset

    @classmethod
    def from_state(cls, state: tuple[float | None, float] | None, wall: Callable[[], float] = time.time) -> ControllableClock:
        clock = cls(wall)
        if state is not None:
            clock._frozen_at, clock._offset = state
        return clock
