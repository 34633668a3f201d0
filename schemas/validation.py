"""Validate documents against the kit's schemas and report readable issues (path + reason)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ._loader import DEFAULT_PROFILE, cached_schema
from .evidence import evidence_in


@dataclass(frozen=True)
class ValidationIssue:
    path: str     # where in the document, e.g. "output.results[0].url" ("" is the document itself)
    reason: str   # what is wrong, in jsonschema's words
    keyword: str  # the schema keyword that failed: "required", "type", "pattern" ...
    evidence: tuple[str, ...] = ()  # observations (observations.json) the failing part of the schema follows
    said: str = ""                  # the same, told as a client of the service is told (no value, no regex)
    error: str | None = None        # the error-table entry a schema node names for this failure

    def __str__(self) -> str:
        return f"{self.path or '<document>'}: {self.reason}"


def format_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _split_ref(name: str) -> tuple[str, str]:
    """'schema#/$defs/x' -> ('schema', '/$defs/x'); a bare name -> (name, '')."""
    base, _, pointer = name.partition("#")
    return base, pointer


@cache
def validator_for(name: str, profile: str = DEFAULT_PROFILE) -> Draft202012Validator:
    """A compiled validator for a schema name, optionally with a '#/$defs/...' pointer into it."""
    base, pointer = _split_ref(name)
    schema = cached_schema(base, profile)
    if pointer:
        if not pointer.startswith("/$defs/"):
            raise KeyError(f"only pointers into $defs are supported, got {pointer!r}")
        schema = {"$schema": schema.get("$schema"), "$defs": schema["$defs"], "$ref": "#" + pointer}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def fast_validator_for(name: str, profile: str = DEFAULT_PROFILE) -> jsonschema_rs.Validator:
    """The same schema compiled by jsonschema-rs: a hundred times faster to say "valid", which is
    what nearly every request and answer is. It only ever accepts: anything it refuses goes to
    the Python validator, whose errors the messages are made of, so a dialect difference (its
    ECMA regexes are stricter than Python's about a trailing newline) costs time, never a verdict.
    tests/test_fast_validation.py holds it to that: whatever it accepts, jsonschema accepts."""
    schema = validator_for(name, profile).schema
    assert isinstance(schema, dict)  # the kit's schemas are objects, never the booleans a schema may be
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def _leaf(error: ValidationError) -> ValidationError:
    # oneOf/anyOf failures say only "is not valid under any of the given schemas"; the most
    # relevant sub-error names the field that is actually wrong.
    while error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        error = best_match(e for e in error.context if len(e.absolute_path) == deepest)
    return error


def _evidence_along(root: Any, schema_path: Iterable[Any]) -> tuple[str, ...]:
    """The observations cited (x-evidence) by every schema node on the way to a failing keyword.
    jsonschema's paths step through a $ref without naming it; schemas are bundled, so a $ref is a
    local pointer ('#/$defs/...'), followed here."""
    found: list[str] = []

    def resolve(pointer: str) -> Any:
        target: Any = root
        for step in pointer.removeprefix("#").strip("/").split("/"):
            target = target[step] if step else target
        return target

    def note(node: Any) -> None:
        found.extend(i for i in evidence_in(node) if i not in found)

    node: Any = root
    for part in schema_path:
        try:
            while isinstance(node, dict) and part not in node and isinstance(node.get("$ref"), str):
                node = resolve(node["$ref"])
                note(node)
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        note(node)
    return tuple(found)


def validate(instance: Any, name: str, profile: str = DEFAULT_PROFILE) -> list[ValidationIssue]:
    """Every problem of `instance` against schema `name` in `profile`; an empty list means valid."""
    if fast_validator_for(name, profile).is_valid(instance):
        return []
    validator = validator_for(name, profile)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    issues = []
    for error in errors:
        leaf = _leaf(error)
        # The leaf's absolute path runs through its parents', so one walk sees every node on the way.
        evidence = _evidence_along(validator.schema, leaf.absolute_schema_path)
        said, key = plain_message(error, leaf)
        issues.append(ValidationIssue(format_path(leaf.absolute_path), _bounded(leaf.message), str(leaf.validator), evidence,
                                      said, key))
    return issues


MAX_REASON = 300


def _bounded(reason: str) -> str:
    # jsonschema quotes the offending value whole ("[...] is too long"); with 10 MB images in it,
    # an error message would carry them back. Keep the start, which names what is wrong.
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def is_valid(instance: Any, name: str, profile: str = DEFAULT_PROFILE) -> bool:
    return fast_validator_for(name, profile).is_valid(instance) or validator_for(name, profile).is_valid(instance)


# --- what a client is told ---------------------------------------------------------------------
# A refused request's message must read like the service's: the field and the limit, short. Never
# jsonschema's words, which quote the whole offending value (a 10 MB data URI), a regex or a
# Python repr. Schema nodes can say it better ("x-messages": keyword -> predicate) and name the
# error-table entry a failing keyword answers with ("x-errors": keyword or "required:<field>" -> key).

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "object": "an object", "array": "a list", "null": "null"}
_MAX_LISTED = 8


def _json_words(values: Any) -> str:
    listed = [json.dumps(v, ensure_ascii=False)[:40] for v in list(values)[:_MAX_LISTED]]
    return ", ".join(listed) + (", …" if len(values) > _MAX_LISTED else "")


def _predicate(error: ValidationError) -> str:
    """What the value must be, in words, from the failing keyword and its limit (not the value)."""
    keyword, limit = str(error.validator), cast(Any, error.validator_value)
    if keyword == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        return "must be " + " or ".join(_TYPE_WORDS.get(k, str(k)) for k in kinds)
    words = {
        "minimum": f"must be at least {limit}", "maximum": f"must be at most {limit}",
        "exclusiveMinimum": f"must be more than {limit}", "exclusiveMaximum": f"must be less than {limit}",
        "minLength": "must not be empty" if limit == 1 else f"must have at least {limit} characters",
        "maxLength": f"must have at most {limit} characters",
        "minItems": "must not be empty" if limit == 1 else f"must have at least {limit} items",
        "maxItems": f"must have at most {limit} items",
        "minContains": f"must have at least {limit} matching items", "maxContains": f"must have at most {limit} matching items",
        "pattern": "has the wrong format", "format": f"must be a valid {limit}",
        "multipleOf": f"must be a multiple of {limit}",
    }
    if keyword in words:
        return words[keyword]
    if keyword == "const":
        return f"must be {_json_words([limit])}"
    if keyword == "enum":
        return f"must be one of {_json_words(limit)}"
    if keyword == "additionalProperties":
        return "has a field that is not allowed here"
    return "is not valid"


def _said(node: Any, table: str, keyword: str) -> Any:
    said = node.get(table) if isinstance(node, dict) else None
    return said.get(keyword) if isinstance(said, dict) else None


def _missing(error: ValidationError) -> str:
    present = error.instance if isinstance(error.instance, dict) else {}
    required = cast(list[str], error.validator_value)
    return next((name for name in required if name not in present), "")


def plain_message(error: ValidationError, leaf: ValidationError) -> tuple[str, str | None]:
    """(a short sentence naming the field and the limit, the error-table key a schema node names
    for this failure or None). The outermost node that says something about its failing keyword
    wins: the error itself, then its most relevant leaf (_leaf)."""
    for candidate in (error, leaf):
        keyword, where = str(candidate.validator), format_path(candidate.absolute_path)
        if keyword == "required":
            field = _missing(candidate)
            full = f"{where}.{field}" if where else field
            return f"{full} is required", _said(candidate.schema, "x-errors", f"required:{field}")
        predicate = _said(candidate.schema, "x-messages", keyword)
        key = _said(candidate.schema, "x-errors", keyword)
        if predicate or key:
            return f"{where or 'the body'} {predicate or _predicate(candidate)}", key
    return f"{format_path(leaf.absolute_path) or 'the body'} {_predicate(leaf)}", None
