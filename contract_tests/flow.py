"""Following a task to its end: on a fake with an admin clock by moving the clock in growing
steps, elsewhere by polling in real time (at most the configured limit)."""

from __future__ import annotations

import time

from .exchange import Exchange

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
CLOCK_STEPS = (1, 2, 5, 10, 30, 60, 300, 900, 3600)


def status_of(exchange: Exchange) -> str | None:
    output = (exchange.json or {}).get("output") if isinstance(exchange.json, dict) else None
    return output.get("task_status") if isinstance(output, dict) else None


def follow(client, task_id: str, *, key: str | None = "default", limit: float = 300.0, model: str | None = None) -> list[Exchange]:
    """Every poll of the task until it ends (or stops answering 200); the last is the final one."""
    admin = client.target.admin
    polls: list[Exchange] = []
    deadline = time.monotonic() + limit
    step = 0
    while True:
        polled = client.get_task(task_id, key=key, model=model)
        polls.append(polled)
        if polled.status != 200 or status_of(polled) in TERMINAL or status_of(polled) is None:
            return polls
        if admin is not None:
            admin.advance(CLOCK_STEPS[min(step, len(CLOCK_STEPS) - 1)])
            step += 1
            if step > 200:
                raise TimeoutError(f"task {task_id} never ended on the fake's clock")
        else:
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} did not end within {limit:g} s")
            time.sleep(5)  # sleep-ok: a real server's task runs in real time (the docs suggest polling every 5-10 s)
