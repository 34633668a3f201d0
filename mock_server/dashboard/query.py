"""What the dashboard's address asks for: the task filters, the page of tasks, whether keys are
shown in full. Read strictly: a value the fake cannot have is a 400 in the DashScope envelope
(what /__admin answers too), never a page quietly showing something else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from .. import parse
from ..backend.tasks import LIST_STATUSES
from ..errors import DashScopeError
from ..service import FakeDashScope

PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
# Far past any store a dashboard is looked at with; keeps offset + page (what each owner's index
# is read up to, backend.tasks.overview) bounded.
MAX_PAGE = 10_000
_SWITCH = {"0": False, "1": True}


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    model: str | None = None
    account: str | None = None
    region: str | None = None
    page: int = 1
    page_size: int = PAGE_SIZE
    show_keys: bool = False

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def link(self, **changes: Any) -> str:
        """The dashboard's address ("?..." or "/") with these filters and `changes`; defaults left out."""
        wanted = asdict(replace(self, **changes))
        defaults = asdict(Filters())
        shown = {name: int(value) if isinstance(value, bool) else value
                 for name, value in wanted.items() if value is not None and value != defaults[name]}
        return f"?{urlencode(shown)}" if shown else "/"


def _bad(name: str, reason: str) -> DashScopeError:
    return DashScopeError(400, "InvalidParameter", f"{name}: {reason}")


def _one_of(query: Mapping[str, str], name: str, allowed: list[str]) -> str | None:
    """A filter's value, or None for "any" (absent or empty, as a form's blank choice sends it)."""
    value = query.get(name) or None
    if value is not None and value not in allowed:
        raise _bad(name, f"one of {', '.join(allowed)} (or empty: any)")
    return value


def _number(query: Mapping[str, str], name: str, default: int, high: int) -> int:
    text = query.get(name)
    if not text:
        return default
    try:
        return parse.decimal(text, low=1, high=high)
    except parse.BadInput as bad:
        raise _bad(name, str(bad)) from None


def read_filters(service: FakeDashScope, query: Mapping[str, str]) -> Filters:
    """The Filters of a dashboard address, or DashScopeError 400 naming the parameter."""
    switch = query.get("show_keys") or "0"
    if switch not in _SWITCH:
        raise _bad("show_keys", "0 or 1")
    return Filters(
        status=_one_of(query, "status", list(LIST_STATUSES)),
        model=_one_of(query, "model", list(service.catalog.models)),
        account=_one_of(query, "account", sorted({k.account for k in service.keys.all()})),
        region=_one_of(query, "region", list(service.catalog.regions)),
        page=_number(query, "page", 1, MAX_PAGE),
        page_size=_number(query, "page_size", PAGE_SIZE, MAX_PAGE_SIZE),
        show_keys=_SWITCH[switch],
    )
