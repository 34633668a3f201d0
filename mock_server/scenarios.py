"""Scenarios: faults and outcomes on demand, matched against requests.

A scenario is data: a match (endpoint, model, region, API key, a substring of the prompt: all
optional, all must hold), an effect, and optionally how many matching requests it applies to.
The first live scenario whose match holds wins; a request may also name one by id or name in
the X-DashScope-Mock-Scenario header (a name no scenario has is the fake's own 400
MockScenarioNotFound), and one marked only_when_chosen acts on such requests only. Effects, and the schema a scenario must follow, are in
effects.py (and the README).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

from dashscope_schemas import Catalog
from jsonschema.exceptions import best_match

from . import effects
from .errors import DashScopeError

SCENARIO_HEADER = "x-dashscope-mock-scenario"


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
    only_when_chosen: bool = False  # acts only on requests naming it in the header
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
        data["only_when_chosen"] = self.only_when_chosen
        return data


def parse(data: Any, catalog: Catalog, scenario_id: str) -> Scenario:
    """A Scenario from its JSON form, checked against the scenario schema of effects.py; or
    ScenarioError saying what is wrong (the field, then why)."""
    found = sorted(effects.scenario_validator(catalog.profile).iter_errors(data), key=lambda e: len(e.absolute_path))
    if found:
        first = best_match(found)
        where = ".".join(str(part) for part in first.absolute_path)
        kind = effects.EFFECTS.get(data["effect"]["type"]) if first.validator == "anyOf" and where == "effect" else None
        raise ScenarioError(f"{where + ': ' if where else ''}{kind.hint if kind and kind.hint else first.message[:200]}")
    effect = data["effect"]
    for key, value in effect.items():  # JSON from a config file may hold NaN or Infinity; bodies cannot
        if isinstance(value, float) and not math.isfinite(value):
            raise ScenarioError(f"effect.{key}: must be a finite number")
    applies_to = effects.endpoints_for(catalog, effects.EFFECTS[effect["type"]].applies)
    return Scenario(id=scenario_id, match=dict(data.get("match") or {}), effect=dict(effect), name=data.get("name"),
                    remaining=data.get("times"), only_when_chosen=bool(data.get("only_when_chosen")),
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
        """The scenario for this request, counted as applied; None when none applies. A chosen one
        (the header) that does not exist is an error: a test naming it expects it to act. One that
        is used up, or whose effect cannot apply to this endpoint, lets the request go on."""
        if chosen:
            found = self._scenarios.get(chosen) or next((s for s in self._scenarios.values() if s.name == chosen), None)
            if found is None:
                raise self.not_found(chosen)
            candidates = [found] if found.live and found.effect_applies_to(facts.get("endpoint")) else []
        else:
            candidates = [s for s in self._scenarios.values() if s.live and not s.only_when_chosen and s.matches(facts)]
        if not candidates:
            return None
        scenario = candidates[0]
        used = replace(scenario, applied=scenario.applied + 1,
                       remaining=None if scenario.remaining is None else scenario.remaining - 1)
        self._scenarios[scenario.id] = used
        return used

    def to_state(self) -> dict[str, Any]:
        """The book as JSON, for a store to keep: every scenario with its counts, and the next id."""
        next_id = next(self._ids)
        self._ids = itertools.chain([next_id], self._ids)  # looked at, not used up
        return {"next_id": next_id, "scenarios": [{**s.to_dict(), "applies_to": sorted(s.applies_to)} for s in self._scenarios.values()]}

    @classmethod
    def from_state(cls, catalog: Catalog, state: dict[str, Any] | None) -> ScenarioBook:
        """The book to_state() wrote (already checked when added: not parsed again)."""
        book = cls(catalog)
        if state:
            book._ids = itertools.count(state["next_id"])
            for s in state["scenarios"]:
                book._scenarios[s["id"]] = Scenario(
                    id=s["id"], match=s["match"], effect=s["effect"], name=s.get("name"), remaining=s["remaining"],
                    applied=s["applied"], only_when_chosen=s["only_when_chosen"], applies_to=frozenset(s["applies_to"]))
        return book

    def not_found(self, chosen: str) -> DashScopeError:
        live = [s.name or s.id for s in self._scenarios.values() if s.live]
        shown = ", ".join(live[:20]) + (", ..." if len(live) > 20 else "") if live else "none"
        return DashScopeError(400, "MockScenarioNotFound", f"no scenario named {chosen[:100]!r} (live: {shown})")
