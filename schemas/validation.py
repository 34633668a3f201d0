"""Validate documents against the kit's schemas and report readable issues (path + reason)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ._loader import DEFAULT_PROFILE, cached_schema


@dataclass(frozen=True)
class ValidationIssue:
    path: str     # where in the document, e.g. "output.results[0].url" ("" is the document itself)
    reason: str   # what is wrong, in jsonschema's words
    keyword: str  # the schema keyword that failed: "required", "type", "pattern" ...

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


def _leaf(error: ValidationError) -> ValidationError:
    # oneOf/anyOf failures say only "is not valid under any of the given schemas"; the most
    # relevant sub-error names the field that is actually wrong.
    while error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        error = best_match(e for e in error.context if len(e.absolute_path) == deepest)
    return error


def validate(instance: Any, name: str, profile: str = DEFAULT_PROFILE) -> list[ValidationIssue]:
    """Every problem of `instance` against schema `name` in `profile`; an empty list means valid."""
    errors = sorted(validator_for(name, profile).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    issues = []
    for error in errors:
        leaf = _leaf(error)
        issues.append(ValidationIssue(format_path(leaf.absolute_path), _bounded(leaf.message), str(leaf.validator)))
    return issues


MAX_REASON = 300


def _bounded(reason: str) -> str:
    # jsonschema quotes the offending value whole ("[...] is too long"); with 10 MB images in it,
    # an error message would carry them back. Keep the start, which names what is wrong.
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def is_valid(instance: Any, name: str, profile: str = DEFAULT_PROFILE) -> bool:
    return validator_for(name, profile).is_valid(instance)
