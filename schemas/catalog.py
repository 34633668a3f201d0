"""The model catalog of one API profile, resolved into one flat entry per model."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ._loader import DEFAULT_PROFILE, raw_catalog, read_json


@dataclass(frozen=True)
class Model:
    name: str
    family: str
    same_as: str | None
    endpoints: tuple[str, ...]
    regions: tuple[str, ...]
    n: dict[str, int]
    size_rule_name: str
    size_rule: dict[str, Any]
    prompt: dict[str, Any]
    negative_prompt: dict[str, Any]
    input_images: dict[str, Any]
    parameters: frozenset[str]
    rate_limit: dict[str, Any]
    price_per_image: dict[str, float | None]
    free_quota_images: dict[str, int | None]
    cross_rules: tuple[dict[str, Any], ...]
    sources: tuple[str, ...]
    entry: dict[str, Any] = field(repr=False, compare=False)  # the resolved catalog entry as data

    @property
    def is_async(self) -> bool:
        return any(e != "multimodal-generation" for e in self.endpoints)

    @property
    def is_sync(self) -> bool:
        return "multimodal-generation" in self.endpoints

    @property
    def default_n(self) -> int:
        return self.n.get("default", self.n["min"])


@dataclass(frozen=True)
class Catalog:
    profile: str
    date: str
    regions: dict[str, dict[str, Any]]
    endpoints: dict[str, dict[str, Any]]
    size_rules: dict[str, dict[str, Any]]
    models: dict[str, Model]
    errors: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False, compare=False)

    def model(self, name: Any) -> Model | None:
        return self.models.get(name) if isinstance(name, str) else None

    def error(self, key: str) -> dict[str, Any]:
        """The wire status, code and message of an error-code entry (error-codes.json)."""
        return self.errors[key]

    def endpoint_for_path(self, path: str) -> str | None:
        for name, endpoint in self.endpoints.items():
            if endpoint["path"] == path:
                return name
        return None

    def check_request(self, endpoint: str, body: Any, headers: dict[str, str] | None = None, region: str | None = None):
        """Is this request valid for its model here, and if not, which rule and which error code."""
        from .rules import check_request

        return check_request(self, endpoint, body, headers or {}, region)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; anything else replaces. Unlike a merge patch, null is a value here
    (an unknown price or rate limit is null), not a deletion."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _resolve_family(families: dict[str, Any], name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in seen:
        raise ValueError(f"family cycle: {' -> '.join(seen + (name,))}")
    family = families[name]
    parent = family.get("extends")
    base = _resolve_family(families, parent, seen + (name,)) if parent else {}
    return _deep_merge(base, {k: v for k, v in family.items() if k != "extends"})


def _build_model(name: str, entry: dict[str, Any], size_rules: dict[str, Any]) -> Model:
    return Model(
        name=name,
        family=entry["family"],
        same_as=entry.get("same_as"),
        endpoints=tuple(entry["endpoints"]),
        regions=tuple(entry["regions"]),
        n=dict(entry["n"]),
        size_rule_name=entry["size_rule"],
        size_rule=size_rules[entry["size_rule"]],
        prompt=entry["prompt"],
        negative_prompt=entry["negative_prompt"],
        input_images=entry["input_images"],
        parameters=frozenset(entry["parameters"]),
        rate_limit=entry["rate_limit"],
        price_per_image=entry["price_per_image"],
        free_quota_images=entry["free_quota_images"],
        cross_rules=tuple(entry["cross_rules"]),
        sources=tuple(entry["sources"]),
        entry=entry,
    )


def resolved_entries(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each model's family chain and overrides merged into one plain dict."""
    out = {}
    for name, model in raw["models"].items():
        entry = _deep_merge(_resolve_family(raw["families"], model["family"]), model)
        entry.pop("$comment", None)
        out[name] = entry
    return out


def load_catalog(profile: str = DEFAULT_PROFILE) -> Catalog:
    """The catalog of `profile` (default: current). Cached: every call returns the same object."""
    return _load_catalog(profile)


@lru_cache(maxsize=None)
def _load_catalog(profile: str) -> Catalog:
    raw = raw_catalog(profile)
    models = {name: _build_model(name, entry, raw["size_rules"]) for name, entry in resolved_entries(raw).items()}
    return Catalog(
        profile=raw["profile"],
        date=raw["date"],
        regions=raw["regions"],
        endpoints=raw["endpoints"],
        size_rules=raw["size_rules"],
        models=models,
        errors=read_json("error-codes.json")["errors"],
        raw=raw,
    )
