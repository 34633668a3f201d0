"""What a run would send and what it would cost, before it sends anything: the catalog cases one
by one, then the generated requests and the task lifecycle as estimates, each marked as fitting
the budget or cut by it, in the order a run spends (the suite's files run in that order)."""

from __future__ import annotations

from dataclasses import dataclass, field

import dashscope_schemas as ds

from .cases import Case, catalog_cases
from .client import Budget, BudgetExhausted
from .settings import Settings
from .stateful_plan import REAL_MAX_TASKS


@dataclass
class Line:
    """One planned request (a catalog case) or a group of them (generated, lifecycle)."""

    label: str
    requests: int
    images: int
    usd: float
    fits: bool
    case: Case | None = None


@dataclass
class PlanEstimate:
    kind: str
    region: str
    budget_usd: float | None
    budget_images: int | None
    lines: list[Line] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return sum(line.usd for line in self.lines)

    @property
    def fitting_usd(self) -> float:
        return sum(line.usd for line in self.lines if line.fits)

    @property
    def cut(self) -> list[Line]:
        return [line for line in self.lines if not line.fits]


def lifecycle_tasks(settings: Settings, billed: bool) -> int:
    """About how many tasks the lifecycle tests (test_tasks: five) and the state machine create;
    against a billed target the machine is capped (stateful_plan.REAL_*)."""
    return 5 + (REAL_MAX_TASKS if billed else min(settings.max_examples, 10))


def plan_estimate(settings: Settings, kind: str) -> PlanEstimate:
    """The plan of a run against a target of `kind`, priced at the catalog's prices (an undocumented
    price counts as the dearest documented one) and held against the budget the run would have."""
    catalog = ds.load_catalog(settings.profile)
    region = settings.case_region(catalog)
    billed = kind in ("real", "unknown")
    models = list(settings.models) or sorted(catalog.models)
    cases = catalog_cases(catalog, models, region, cheap=billed, has_other_region_key=bool(settings.other_region_key) or not billed)
    usd_limit = settings.budget_usd_for(kind)
    estimate = PlanEstimate(kind, region, usd_limit, settings.budget_images)
    budget = Budget(settings.budget_images, usd_limit, region, catalog)
    pricer = Budget(None, None, region, catalog)

    def add(label: str, model: str, requests: int, images: int, case: Case | None = None) -> None:
        try:
            if images:
                budget.reserve(model, images)
            fits = True
        except BudgetExhausted:
            fits = False
        estimate.lines.append(Line(label, requests, images, images * pricer.price(model), fits, case))

    for case in cases:
        add(case.id, case.model, 1, case.spend, case)
    serving = [m for m in models if (found := catalog.model(m)) is not None and region in found.regions] or models
    cheapest = min(serving, key=lambda m: pricer.price(m) * catalog.models[m].n.min)
    # Generated valid requests and lifecycle tasks are drawn at run time: priced as one cheapest
    # image each, the way the suite draws them against a billed target.
    for i in range(settings.valid_examples(kind)):
        add(f"generated valid request {i + 1}", cheapest, 1, catalog.models[cheapest].n.min)
    for i in range(lifecycle_tasks(settings, billed)):
        add(f"task lifecycle {i + 1}", cheapest, 1, catalog.models[cheapest].n.min)
    return estimate
