"""Scenarios: faults and outcomes on demand, matched against requests.

A scenario is data: a match (endpoint, model, region, API key, a substring of the prompt: all
optional, all must hold), an effect, and optionally how many matching requests it applies to.
The first live scenario whose match holds wins; a request may also name one by id or name in
the X-DashScope-Mock-Scenario header. Effects are described in EFFECTS below and in the README.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

from dashscope_schemas import Catalog

SCENARIO_HEADER = "x-dashscope-mock-scenario"
# Where an effect can apply: the generation endpoints, or every endpoint of the API (the
# catalog's endpoints below a region's base URL).
GENERATION, ANY = "generation", "any"
MATCH_KEYS = ("endpoint", "model", "region", "api_key", "prompt_contains")

# effect type -> (its parameters and their types, where it can apply)
EFFECTS: dict[str, tuple[dict[str, type | tuple[type, ...]], str]] = {
    "task_failed":       ({"error": str, "code": str, "message": str}, GENERATION),
    "partial_failure":   ({"failed": int, "error": str, "code": str, "message": str}, GENERATION),
    "output_moderation": ({}, GENERATION),
    "reject":            ({"error": str, "status": int, "code": str, "message": str}, ANY),
    "latency":           ({"pending_seconds": (int, float), "running_seconds": (int, float),
                           "response_seconds": (int, float)}, ANY),
    "drop_connection":   ({}, ANY),
    "malformed_body":    ({"status": int}, ANY),
    "unavailable":       ({"status": int}, ANY),
}


def scenario_endpoints(catalog: Catalog, where: str = ANY) -> tuple[str, ...]:
    """The endpoint names a scenario can match: every endpoint of the API, or the generation ones."""
    return tuple(name for name, e in catalog.endpoints.items() if e.under_api and (where == ANY or e.generates))
MAX_RESPONSE_DELAY = 60.0


class ScenarioError(ValueError):
    """A scenario that cannot be: the admin API answers it with 400 InvalidParameter."""


@dataclass(frozen=True)
class Scenario:
    id: str
    match: dict[str, str]
    effect: dict[str, Any]
    name: str | None = None
    remaining: int | None = None  # None: every matching request
    applied: int = 0
    applies_to: frozenset[str] = field(default=frozenset(), compare=False)  # the endpoints its effect can apply to

    @property
    def kind(self) -> str:
        return str(self.effect["type"])

    @property
    def live(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def matches(self, facts: dict[str, str | None]) -> bool:
        for key, wanted in self.match.items():
            if key == "prompt_contains":
                if wanted not in (facts.get("prompt") or ""):
                    return False
            elif facts.get(key) != wanted:
                return False
        return self.effect_applies_to(facts.get("endpoint"))

    def effect_applies_to(self, endpoint: str | None) -> bool:
        return endpoint in self.applies_to

    def to_dict(self) -> dict[str, Any]:
        data = {"id": self.id, "match": self.match, "effect": self.effect, "remaining": self.remaining, "applied": self.applied}
        if self.name:
            data["name"] = self.name
        return data


def parse(data: Any, catalog: Catalog, scenario_id: str) -> Scenario:
    """A Scenario from its JSON form, or ScenarioError saying what is wrong."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is an object with match, effect and optionally times and name")
    unknown = set(data) - {"match", "effect", "times", "name", "id"}
    if unknown:
        raise ScenarioError(f"unknown scenario keys: {', '.join(sorted(unknown))}")
    match = data.get("match") or {}
    if not isinstance(match, dict) or set(match) - set(MATCH_KEYS) or not all(isinstance(v, str) for v in match.values()):
        raise ScenarioError(f"match is an object of strings with keys among {', '.join(MATCH_KEYS)}")
    endpoints = scenario_endpoints(catalog)
    if "endpoint" in match and match["endpoint"] not in endpoints:
        raise ScenarioError(f"match.endpoint must be one of {', '.join(endpoints)}")
    if "region" in match and match["region"] not in catalog.regions:
        raise ScenarioError(f"match.region must be one of {', '.join(catalog.regions)}")
    effect = data.get("effect")
    if not isinstance(effect, dict) or not isinstance(effect.get("type"), str) or effect["type"] not in EFFECTS:
        raise ScenarioError(f"effect.type must be one of {', '.join(EFFECTS)}")
    params, where = EFFECTS[effect["type"]]
    applies_to = scenario_endpoints(catalog, where)
    for key, value in effect.items():
        if key == "type":
            continue
        if key not in params:
            raise ScenarioError(f"effect {effect['type']} takes {', '.join(params) or 'no parameters'}, not {key}")
        if isinstance(value, bool) or not isinstance(value, params[key]):
            raise ScenarioError(f"effect.{key} has the wrong type")
        if isinstance(value, (int, float)) and (not math.isfinite(value) or value < 0):
            raise ScenarioError(f"effect.{key} must be a finite number >= 0")
    if "error" in effect and effect["error"] not in catalog.errors:
        raise ScenarioError(f"effect.error must be one of {', '.join(catalog.errors)}")
    if effect["type"] == "reject" and "error" not in effect and not {"status", "code", "message"} <= set(effect):
        raise ScenarioError("reject takes an error (a key of error-codes.json) or status, code and message")
    if "status" in effect and not 100 <= effect["status"] <= 599:
        raise ScenarioError("effect.status must be an HTTP status")
    if effect["type"] == "unavailable" and effect.get("status", 503) not in (502, 503, 504):
        raise ScenarioError("unavailable is 502, 503 or 504")
    if effect.get("response_seconds", 0) > MAX_RESPONSE_DELAY:
        raise ScenarioError(f"response_seconds is at most {MAX_RESPONSE_DELAY:g}")
    if effect["type"] == "partial_failure" and effect.get("failed", 1) < 1:
        raise ScenarioError("partial_failure fails at least one image")
    endpoint = match.get("endpoint")
    if endpoint is not None and endpoint not in applies_to:
        raise ScenarioError(f"effect {effect['type']} applies to {', '.join(applies_to)}, not {endpoint}")
    times = data.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ScenarioError("times is a whole number >= 1")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ScenarioError("name is a string")
    return Scenario(id=scenario_id, match=dict(match), effect=dict(effect), name=name, remaining=times,
                    applies_to=frozenset(applies_to))


@dataclass
class ScenarioBook:
    """The live scenarios, in the order they were added."""

    catalog: Catalog
    _scenarios: dict[str, Scenario] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add(self, data: Any) -> Scenario:
        given = data.get("id") if isinstance(data, dict) else None
        scenario_id = given if isinstance(given, str) else f"sc-{next(self._ids)}"
        if scenario_id in self._scenarios:
            raise ScenarioError(f"a scenario {scenario_id!r} exists")
        scenario = parse(data, self.catalog, scenario_id)
        self._scenarios[scenario.id] = scenario
        return scenario

    def all(self) -> list[Scenario]:
        return list(self._scenarios.values())

    def remove(self, scenario_id: str) -> bool:
        return self._scenarios.pop(scenario_id, None) is not None

    def clear(self) -> None:
        self._scenarios.clear()

    def take(self, facts: dict[str, str | None], chosen: str | None = None) -> Scenario | None:
        """The scenario for this request, counted as applied; None when none applies."""
        if chosen:
            found = self._scenarios.get(chosen) or next((s for s in self._scenarios.values() if s.name == chosen), None)
            candidates = [found] if found and found.live and found.effect_applies_to(facts.get("endpoint")) else []
        else:
            candidates = [s for s in self._scenarios.values() if s.live and s.matches(facts)]
        if not candidates:
            return None
        scenario = candidates[0]
        used = replace(scenario, applied=scenario.applied + 1,
                       remaining=None if scenario.remaining is None else scenario.remaining - 1)
        self._scenarios[scenario.id] = used
        return used
