"""Housekeeping on the fake's clock: records past their time are freed, status changes written.

Requests only do a bounded share of it on their way; the rest is this sweep, run in batches
with a yield to the event loop between them, so a day's worth of expiry after a clock jump
never stalls other requests. It runs every SWEEP_INTERVAL seconds of real time while the server
runs (a Starlette lifespan task), and at once after POST /__admin/clock/advance.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from .backend.tasks import SWEEP_BATCH
from .service import FakeDashScope
from .stores import StoreUnavailable

log = logging.getLogger("dashscope_mock")
SWEEP_INTERVAL = 1.0


async def sweep_all(service: FakeDashScope, batch: int = SWEEP_BATCH) -> int:
    """Sweep until nothing is left to do at the clock's current time; how many records it did."""
    total = 0
    while done := service.sweep(batch):
        total += done
        await asyncio.sleep(0)  # let waiting requests run between batches
    return total


async def _sweep_forever(service: FakeDashScope, interval: float) -> None:
    store_down = False
    while True:
        await asyncio.sleep(interval)  # real time: the wall clock may move the fake's clock
        try:
            await sweep_all(service)
        except StoreUnavailable as exc:  # one line when the store goes away, not a traceback a second
            if not store_down:
                log.warning("housekeeping: the store does not answer (%s); trying again every %g s", exc, interval)
            store_down = True
            continue
        except Exception:  # a bug must not stop the sweeping for good
            log.exception("housekeeping sweep failed")
        if store_down:
            log.warning("housekeeping: the store answers again")
            store_down = False


def settle_the_collector() -> None:
    """For a process that is the server (serve, and each of its workers), not for a test process
    that runs the fake in a thread: what exists at start (catalog, compiled schemas, the app) lives as long as the server: out
    of the cyclic collector's sight (gc.freeze), and young objects collected less often. A stored
    task is long-lived too; the collector walking them all again and again is what made a fake
    holding 20,000 tasks about 6 % slower than an empty one (bench/bench_servers.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    if getattr(app.state, "server_process", False):
        settle_the_collector()
    sweeper = asyncio.create_task(_sweep_forever(app.state.service, SWEEP_INTERVAL))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
