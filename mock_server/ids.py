"""Ids of requests, tasks and images: random UUIDs (version 4), as the service's are; and the
random seeds of generated images.

From a pseudo-random generator seeded once from the operating system (again in a forked child,
so that workers never share a sequence), not a system call per id: os.urandom is a system call
and uuid.uuid4() builds a UUID object to print it, and the fake makes three ids per task. Nothing
rests on ids being unguessable: a task answers only its owner's key, and a result URL needs its
signature."""

from __future__ import annotations

import os
import random

_VARIANT = "89ab"  # RFC 4122 variant: the 17th hex digit is 8, 9, a or b
_random = random.Random(os.urandom(32))


def _reseed() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    h = f"{_random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def new_seed() -> int:
    """A seed for an image whose request gave none: 0 to 2**31 - 1, as the service's are."""
    return _random.getrandbits(31)
