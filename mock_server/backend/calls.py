"""What a backend verb gets of a request (a Call) and what it gives back (an Outcome).

The HTTP layer reads the request into a Call (region, headers, query, the raw body), calls one
verb, carries out the Outcome's interruption if there is one (a wait, an error, garbage, a
dropped connection: effects.py says which) and renders the value. Everything in between, in
the service's order (who calls, what was sent, limits, the scenario, the act), is the verb's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .. import effects, parse
from ..accounts import ApiKey
from ..errors import DashScopeError, invalid_parameter
from ..ids import new_id
from ..scenarios import SCENARIO_HEADER, Scenario

if TYPE_CHECKING:
    from ..service import FakeDashScope

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    region: str
    headers: Mapping[str, str]             # names in lower case
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    # The id of this call's answer: in its body and headers, and kept by a task it creates (the
    # real task list shows it).
    request_id: str = field(default_factory=new_id)

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def enabled(self, name: str) -> bool:
        """An X-DashScope-... switch: on only when it says `enable`."""
        return self.header(name).lower() == "enable"


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None = None
    interruption: effects.Interruption | None = None  # to carry out first (instead of answering, if it stops the call)
    failure: DashScopeError | None = None             # found while generating, after the answer may have begun (a stream)


def caller(service: FakeDashScope, call: Call) -> ApiKey:
    return service.authenticate(call.headers.get("authorization"), call.region)


def json_of(service: FakeDashScope, call: Call) -> Any:
    """The body as a JSON document (parse.json_document's bounds), or 400 InvalidParameter in the
    service's words for a body it cannot read (observation body-not-json)."""
    content_type = call.header("content-type")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise invalid_parameter(service.catalog, "Content-Type", f"must be application/json, not {content_type[:60] or 'missing'}")
    try:
        return parse.json_document(call.body)
    except parse.BadInput:
        raise DashScopeError.from_catalog(service.catalog, "body_invalid") from None


def scenario_of(service: FakeDashScope, call: Call, endpoint: str, key: ApiKey, *, model: str | None = None,
                prompt: str | None = None) -> tuple[Scenario | None, effects.Interruption | None]:
    """The scenario this call meets (it counts as applied) and what it does at the request level."""
    facts = {"endpoint": endpoint, "model": model, "region": call.region, "api_key": key.key, "prompt": prompt}
    scenario = service.scenario_for(facts, call.headers.get(SCENARIO_HEADER))
    return scenario, effects.interruption(service.catalog, scenario.effect) if scenario else None
