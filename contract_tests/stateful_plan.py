"""What the task state machine (test_stateful.py) draws from and keeps: the async endpoints and
the cheap model of each, prompts, clock moves, scenario effects, and what it knows of a task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dashscope_schemas as ds
from hypothesis import strategies as st

from .checks import Expect
from .exchange import Exchange

TASK_TTL = 24 * 3600          # task ids live 24 hours [doc] [async]
# The fake's clock is a float of epoch seconds: a sum of moves can land a rounding error either
# side of an exact 24 h, so polls within this much of it prove nothing either way.
EDGE = 0.01
REAL_MAX_TASKS = 2            # at most this many tasks per test against a target without admin API
FAKE_EXAMPLES, FAKE_STEPS = 10, 20
REAL_EXAMPLES, REAL_STEPS = 2, 6   # the simplest run (create, then poll) and one drawn at random


# The async endpoints of the catalog: the machine creates tasks on each (with the first model, in
# catalog order, that the run allows; see async_choices).
ASYNC_ENDPOINTS = tuple(name for name, e in ds.load_catalog().generation_endpoints.items() if e.is_async)
PROMPTS = ("a red kite over a green hill", "a lighthouse on a cliff at dusk, watercolour", "一只橘猫在窗台上")
# Clock moves: mostly within and around the default phase lengths (1 s pending, 15 s running;
# 50 s for wan2.5; the edges just either side, not on them, so a replay sees the same), one in
# eight around or past the 24-hour lifetime (which ends every task).
SHORT_MOVES = st.one_of(st.integers(0, 20), st.sampled_from([0.5, 1.5, 15.5, 16.5, 50.5, 51.5]), st.integers(0, 120))
# How old a task is when cancelled (if it is not older already): on the fake's default timing,
# PENDING (0, 0.5), RUNNING (1.5 to 15.5; to 50.5 for wan2.5), or ended.
CANCEL_AGES = st.one_of(st.just(0), st.sampled_from([0.5, 1.5, 8, 15.5, 16.5, 50.5, 51.5]), st.integers(0, 60))
LONG_MOVES = st.one_of(st.sampled_from([TASK_TTL - 1, TASK_TTL + 1]),
                       st.floats(TASK_TTL - 60, 2 * TASK_TTL, allow_nan=False, allow_infinity=False))
CLOCK_MOVES = st.integers(0, 7).flatmap(lambda k: LONG_MOVES if k == 7 else SHORT_MOVES)
# Scenario effects: bounded latency, so that a task still ends within the client's 429
# back-off (108 s of clock) when the model's concurrent-task limit is full.
EFFECTS = st.one_of(
    st.just({"type": "task_failed"}),
    st.builds(lambda k: {"type": "partial_failure", "failed": k}, st.integers(1, 4)),
    st.builds(lambda p, r: {"type": "latency", "pending_seconds": p, "running_seconds": r},
              st.integers(0, 20), st.integers(0, 30)),
)
# Longer than any task lives on the fake's default timing (51 s for wan2.5) plus the largest
# latency scenario above (50 s).
ALL_ENDED = 300
CHOICE, N, PROMPT = st.integers(0, 1), st.integers(1, 4), st.sampled_from(PROMPTS)
IMAGE = st.sampled_from([(640, 480), (480, 640), (512, 512)])


def async_choices(contract: Any) -> list[tuple[str, str]]:
    """(endpoint, model) for each async endpoint: the first model of the catalog serving it that the
    profile, the region and DASHSCOPE_CONTRACT_MODELS allow (endpoints with none are left out)."""
    catalog, region, only = contract.catalog, contract.target.region, contract.settings.models
    choices = []
    for endpoint in ASYNC_ENDPOINTS:
        model = next((m.name for m in catalog.models.values()
                      if endpoint in m.endpoints and region in m.regions and (not only or m.name in only)), None)
        if endpoint in catalog.generation_endpoints and model is not None:
            choices.append((endpoint, model))
    return choices


@dataclass
class Tracked:
    """A task this run created, and what the run has seen of it."""

    task_id: str
    endpoint: str
    model: str
    expect: Expect
    created_after: float | None     # the fake's clock just before / just after the creation answer
    created_before: float | None
    history: list[str] = field(default_factory=list)   # statuses seen, in order (creation answer first)
    last: Exchange | None = None    # the answer that last added to the history
    unchecked: bool = False         # the history grew since status_moves_forward last saw it
    expired: bool = False           # verified UNKNOWN at least 24 h after creation
    scenario: str | None = None     # the effect planted for the request that created it, if any

    def __repr__(self) -> str:      # short, for Hypothesis's printout of the failing steps
        return f"<task {self.task_id} {self.model} {'/'.join(self.history)}>"
