"""TimeOrderedList: a sorted list for values that mostly arrive in order and leave from the front.

The memory store's indexes hold tasks in submit-time order. Nearly every task comes after all
the others (the clock moves forward), leaves an index at its front (expiry, oldest first) or
near its end (a recent task changing status), and is looked up by bisection. sortedcontainers'
SortedList does all of that in O(log n), at about a microsecond of Python per call; with eight
indexes per task, that was the largest cost of creating one. A plain list does the common
cases in a fraction of that: an add after the last value is an append, a removal of the first
moves a start offset, and a change within NEAR of the end moves at most NEAR pointers.

Anything else (a value far from the end: the clock set back, an old task changing status in a
long list) would move up to n pointers, so the list turns itself into a SortedList then, and
stays one: no operation costs more than O(NEAR + log n), whatever the history.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedList

NEAR = 1024  # pointers a list change may move (about a microsecond) before it becomes a SortedList


class TimeOrderedList:
    """The part of SortedList's interface the store uses: add, remove, bisect_left/right,
    indexing from the front, islice and len."""

    __slots__ = ("_items", "_start", "_sorted", "_near")

    def __init__(self, near: int = NEAR):
        # _items[_start:] are the values, in order; the slots before _start held values removed
        # from the front (None now: bisection never looks there), given back in bulk once they
        # are half the list.
        self._items: list[Any] = []
        self._start = 0
        self._sorted: SortedList | None = None
        self._near = near

    def __len__(self) -> int:
        return len(self._sorted) if self._sorted is not None else len(self._items) - self._start

    def add(self, value: Any) -> None:
        if self._sorted is not None:
            self._sorted.add(value)
            return
        items = self._items
        if len(items) == self._start:
            self._items, self._start = [value], 0
        elif value >= items[-1]:
            items.append(value)
        else:
            index = bisect_right(items, value, self._start)
            if len(items) - index > self._near:
                self._become_sorted().add(value)
            else:
                items.insert(index, value)

    def remove(self, value: Any) -> None:
        """Remove one value equal to `value`; ValueError when there is none."""
        if self._sorted is not None:
            self._sorted.remove(value)
            return
        items = self._items
        index = bisect_left(items, value, self._start)
        if index == len(items) or items[index] != value:
            raise ValueError(f"{value!r} is not in the list")
        if index == self._start:
            items[index] = None
            self._start += 1
            if self._start * 2 >= len(items):
                del items[:self._start]
                self._start = 0
        elif len(items) - index <= self._near:
            del items[index]
        else:
            self._become_sorted().remove(value)

    def _become_sorted(self) -> SortedList:
        self._sorted = SortedList(self._items[self._start:])
        self._items, self._start = [], 0
        return self._sorted

    def bisect_left(self, value: Any) -> int:
        if self._sorted is not None:
            return int(self._sorted.bisect_left(value))
        return bisect_left(self._items, value, self._start) - self._start

    def bisect_right(self, value: Any) -> int:
        if self._sorted is not None:
            return int(self._sorted.bisect_right(value))
        return bisect_right(self._items, value, self._start) - self._start

    def __getitem__(self, index: int) -> Any:
        """The value at `index` (0 <= index < len)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._sorted[index] if self._sorted is not None else self._items[self._start + index]

    def islice(self, start: int, stop: int, reverse: bool = False) -> Iterator[Any]:
        """The values at [start, stop) (0 <= start <= stop <= len), last first when `reverse`."""
        if self._sorted is not None:
            return iter(self._sorted.islice(start, stop, reverse=reverse))
        values = self._items[self._start + start:self._start + stop]
        return reversed(values) if reverse else iter(values)
