"""Fault effects, declared once: each effect's parameters (a JSON Schema), where it applies, and
what it does at each level.

- request: before anything is made, the answer is refused, replaced by garbage, dropped, or
  slowed down (`interruption`, carried out by api/faults.py, which owns the HTTP);
- task (or synchronous generation): some images fail, the whole task fails, or it queues and
  runs longer (`outcomes`, `timing`);
- stream: failures found while generating arrive inside the event stream (`fails_in_stream`).

Scenarios (scenarios.py) are validated with the schema built here from this table and the
catalog (its endpoints, regions and error codes), so adding an effect is one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from dashscope_schemas import Catalog
from jsonschema import Draft202012Validator

from .domain.tasks import ImageOutcome, Timing
from .errors import DashScopeError

GENERATION, ANY = "generation", "any"  # where an effect can apply: generation endpoints, or every API endpoint
MAX_RESPONSE_DELAY = 60.0
MALFORMED_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream answered garbage{"
_TEXT = {"type": "string", "minLength": 1}
_SECONDS = {"type": "number", "minimum": 0}


@dataclass(frozen=True)
class Interruption:
    """What happens to a request instead of (or before) its answer."""

    delay: float = 0.0                   # real seconds before anything else (a slow answer)
    error: DashScopeError | None = None  # answer with this error
    garbage_status: int | None = None    # answer with a body that is not JSON, with this status
    drop: bool = False                   # close the connection with no answer at all

    @property
    def stops(self) -> bool:
        """Instead of the answer (nothing is made), not merely before it."""
        return self.error is not None or self.garbage_status is not None or self.drop


@dataclass(frozen=True)
class EffectKind:
    name: str
    params: dict[str, Any]              # JSON Schema properties of its parameters ("error" is filled in per catalog)
    applies: str                         # GENERATION or ANY
    failure: str | None = None           # the error-codes.json key it fails with unless it names one
    fails_in_stream: bool = False        # its failure arrives inside an event stream, as event:error
    constraint: dict[str, Any] = field(default_factory=dict)  # more of the schema (e.g. "one of these sets")
    hint: str = ""                       # what to say when `constraint` fails (jsonschema's words name no field)
    interrupt: Callable[[Catalog, dict[str, Any]], Interruption | None] = lambda catalog, effect: None


def error_of(catalog: Catalog, effect: dict[str, Any], default: str, status: int = 500) -> DashScopeError:
    """The error an effect answers with: an error-codes.json key (`error`), or status/code/message."""
    if "error" in effect or "code" not in effect:
        wire = catalog.error(effect.get("error", default))
        return DashScopeError(effect.get("status", wire["status"]), wire["code"], effect.get("message", wire["message"]))
    return DashScopeError(effect.get("status", status), effect["code"], effect.get("message", effect["code"]))


def _unavailable(catalog: Catalog, effect: dict[str, Any]) -> Interruption:
    wire = catalog.error("service_unavailable")
    return Interruption(error=DashScopeError(effect.get("status", 503), wire["code"], wire["message"]))


_ERROR_FIELDS = {"error": {}, "code": _TEXT, "message": _TEXT}
EFFECTS: dict[str, EffectKind] = {kind.name: kind for kind in (
    EffectKind("task_failed", _ERROR_FIELDS, GENERATION, failure="internal_error", fails_in_stream=True),
    EffectKind("partial_failure", {"failed": {"type": "integer", "minimum": 1}, **_ERROR_FIELDS}, GENERATION,
               failure="internal_timeout", fails_in_stream=True),
    # The output side of moderation, in its own words (observation moderation-input-output).
    EffectKind("output_moderation", {}, GENERATION, failure="output_inspection_failed", fails_in_stream=True),
    EffectKind("reject", {**_ERROR_FIELDS, "status": {"type": "integer", "minimum": 100, "maximum": 599}}, ANY,
               constraint={"anyOf": [{"required": ["error"]}, {"required": ["status", "code", "message"]}]},
               hint="reject takes an error (a key of error-codes.json) or status, code and message",
               interrupt=lambda catalog, effect: Interruption(error=error_of(catalog, effect, "internal_error"))),
    EffectKind("latency", {"pending_seconds": _SECONDS, "running_seconds": _SECONDS,
                           "response_seconds": {**_SECONDS, "maximum": MAX_RESPONSE_DELAY}}, ANY),
    EffectKind("drop_connection", {}, ANY, interrupt=lambda catalog, effect: Interruption(drop=True)),
    EffectKind("malformed_body", {"status": {"type": "integer", "minimum": 100, "maximum": 599}}, ANY,
               interrupt=lambda catalog, effect: Interruption(garbage_status=effect.get("status", 200))),
    EffectKind("unavailable", {"status": {"enum": [502, 503, 504]}}, ANY, interrupt=_unavailable),
)}


def endpoints_for(catalog: Catalog, applies: str = ANY) -> tuple[str, ...]:
    """The endpoint names an effect can apply to: every endpoint of the API, or the generation ones."""
    return tuple(name for name, e in catalog.endpoints.items() if e.under_api and (applies == ANY or e.generates))


# --- the levels ------------------------------------------------------------------------------------


def interruption(catalog: Catalog, effect: dict[str, Any]) -> Interruption | None:
    """What the request level does with this effect (None: the request goes on)."""
    found = EFFECTS[effect["type"]].interrupt(catalog, effect)
    delay = float(effect.get("response_seconds", 0))
    if delay:
        return Interruption(delay, found.error, found.garbage_status, found.drop) if found else Interruption(delay)
    return found


def outcomes(catalog: Catalog, effect: dict[str, Any], image_ids: list[str]) -> tuple[tuple[ImageOutcome, ...], tuple[str, str] | None]:
    """Each requested image's fate, and the failure of the whole task, if the effect says so."""
    made = [ImageOutcome(i) for i in image_ids]
    kind = EFFECTS[effect["type"]] if effect else None
    if kind is None or kind.failure is None:
        return tuple(made), None
    failed = error_of(catalog, effect, kind.failure)
    if kind.name == "partial_failure":
        for index in range(max(0, len(made) - effect.get("failed", 1)), len(made)):
            made[index] = ImageOutcome(None, failed.code, failed.message)
        return tuple(made), None
    return tuple(made), (failed.code, failed.message)


def timing(effect: dict[str, Any], base: Timing) -> Timing:
    """A task's phases, lengthened by a latency effect."""
    if not effect or effect["type"] != "latency":
        return base
    return Timing(base.mode, base.pending + effect.get("pending_seconds", 0), base.running + effect.get("running_seconds", 0))


def failure_error(catalog: Catalog, effect: dict[str, Any]) -> DashScopeError:
    """The error a synchronous call answers when the effect makes it fail (500 unless it says)."""
    kind = EFFECTS.get(effect.get("type", "")) if effect else None
    return error_of(catalog, effect, (kind.failure if kind else None) or "internal_error", 500)


def fails_in_stream(effect: dict[str, Any]) -> bool:
    return bool(effect) and EFFECTS[effect["type"]].fails_in_stream


# --- the schema of a scenario ------------------------------------------------------------------------


def scenario_schema(catalog: Catalog) -> dict[str, Any]:
    """The JSON Schema of a scenario in this catalog: its shape, and for each effect (when the
    scenario names it) its parameters and the endpoints it may be matched to."""
    errors = {"type": "string", "enum": sorted(catalog.errors)}
    per_effect = []
    for kind in EFFECTS.values():
        params = {name: (errors if name == "error" else schema) for name, schema in kind.params.items()}
        effect = {"type": "object", "required": ["type"], "additionalProperties": False,
                  "properties": {"type": {"const": kind.name}, **params}, **kind.constraint}
        match = {"properties": {"endpoint": {"enum": list(endpoints_for(catalog, kind.applies))}}}
        per_effect.append({"if": {"properties": {"effect": {"properties": {"type": {"const": kind.name}}}}},
                           "then": {"properties": {"effect": effect, "match": match}}})
    text = {"type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object", "required": ["effect"], "additionalProperties": False,
        "properties": {
            "id": text, "name": text, "times": {"type": "integer", "minimum": 1}, "only_when_chosen": {"type": "boolean"},
            "match": {"type": "object", "additionalProperties": False, "properties": {
                "endpoint": {"enum": list(endpoints_for(catalog))}, "model": text, "api_key": text, "prompt_contains": text,
                "region": {"enum": sorted(catalog.regions)}}},
            "effect": {"type": "object", "required": ["type"], "properties": {"type": {"enum": sorted(EFFECTS)}}},
        },
        "allOf": per_effect,
    }


@cache
def scenario_validator(profile: str) -> Draft202012Validator:
    from dashscope_schemas import load_catalog

    schema = scenario_schema(load_catalog(profile))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
