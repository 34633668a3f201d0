"""The catalog of one API profile: the plan of the API (its endpoints) and one flat, typed entry
per model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from . import paths
from ._loader import DEFAULT_PROFILE, raw_catalog, read_json
from .rules import Verdict, check_request
from .sizes import SizeRule, size_rule


@dataclass(frozen=True)
class Endpoint:
    """One public route of the API, as catalog.json "endpoints" declares it."""

    name: str
    method: str
    path: str                # below a region's base URL (.../api/v1) when base == "api", else from the root
    base: str                # "api" or "root"
    kind: str                # "generation", "task", "upload" or "download"
    summary: str
    statuses: frozenset[int]  # documented answers, success included
    mode: str | None = None  # generation endpoints: "sync" or "async"
    async_header: str | None = None  # generation endpoints: X-DashScope-Async "required" or "refused"
    request_id_headers: tuple[str, ...] = ()  # response headers that repeat the body's request_id
    content_type: str = "application/json"
    evidence: tuple[str, ...] = ()  # observations (observations.json) this route follows
    request_schema: str | None = None
    response_schema: str | None = None
    prompt_path: str | None = None
    images_path: str | None = None
    negative_prompt_path: str | None = None
    template: dict[str, Any] | None = field(default=None, compare=False)  # the smallest body, to build on

    @property
    def generates(self) -> bool:
        return self.kind == "generation"

    @property
    def is_async(self) -> bool:
        return self.mode == "async"

    @property
    def is_sync_generation(self) -> bool:
        return self.mode == "sync"

    @property
    def under_api(self) -> bool:
        return self.base == "api"

    def body(self, model: str, prompt: str, images: list[str], parameters: dict[str, Any]) -> dict[str, Any]:
        """A request body of this generation endpoint, built from its template and paths."""
        assert self.template is not None and self.prompt_path is not None
        body = paths.build(self.template, [(self.images_path, images), (self.prompt_path, [prompt])])
        return {"model": model, **body, "parameters": parameters}

    @classmethod
    def from_data(cls, name: str, data: dict[str, Any]) -> Endpoint:
        rest = {k: v for k, v in data.items() if k not in ("statuses", "evidence", "request_id_headers")}
        return cls(name=name, statuses=frozenset(data["statuses"]), evidence=tuple(data.get("evidence", ())),
                   request_id_headers=tuple(data.get("request_id_headers", ())), **rest)


@dataclass(frozen=True)
class Range:
    min: int
    max: int
    default: int


@dataclass(frozen=True)
class TextLimit:
    max_chars: int
    truncate: bool  # longer text is cut silently (else refused)


@dataclass(frozen=True)
class ImageLimits:
    min: int
    max: int
    max_bytes: int
    formats: tuple[str, ...]
    recommended_side: tuple[int, ...] = ()


@dataclass(frozen=True)
class RateLimit:
    requests: int | None        # per `per`; None: no documented limit
    per: str | None             # "second" or "minute"
    concurrent_tasks: int | None


@dataclass(frozen=True)
class CrossRule:
    """A rule between two fields: when `if_present` is given, `require_path` must equal `require_equals`
    (a missing value counting as the default of `default_from`)."""

    id: str
    if_present: str
    require_path: str
    require_equals: Any
    default_from: str | None
    reason: str
    error: str

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CrossRule:
        require = data["require"]
        return cls(data["id"], data["if_present"], require["path"], require["equals"], require.get("default_from"),
                   data["reason"], data["error"])


@dataclass(frozen=True)
class Model:
    name: str
    family: str
    same_as: str | None
    endpoints: tuple[str, ...]
    regions: tuple[str, ...]
    n: Range
    size_rule: SizeRule
    prompt: TextLimit
    negative_prompt: TextLimit
    input_images: ImageLimits
    parameters: frozenset[str]
    rate_limit: RateLimit
    price_per_image: dict[str, float | None]
    free_quota_images: dict[str, int | None]
    cross_rules: tuple[CrossRule, ...]
    sources: tuple[str, ...]
    is_async: bool  # served by an asynchronous (task) endpoint
    is_sync: bool   # served by the synchronous endpoint
    entry: dict[str, Any] = field(repr=False, compare=False)  # the resolved catalog entry as data
    evidence: tuple[str, ...] = ()  # observations (observations.json) the entry follows

    @property
    def size_rule_name(self) -> str:
        return self.size_rule.name

    @property
    def default_n(self) -> int:
        return self.n.default


@dataclass(frozen=True)
class Catalog:
    profile: str
    date: str
    regions: dict[str, dict[str, Any]]
    endpoints: dict[str, Endpoint]
    size_rules: dict[str, SizeRule]
    models: dict[str, Model]
    errors: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False, compare=False)

    def model(self, name: Any) -> Model | None:
        return self.models.get(name) if isinstance(name, str) else None

    def error(self, key: str) -> dict[str, Any]:
        """The wire status, code and message of an error-code entry (error-codes.json)."""
        return self.errors[key]

    @cached_property  # asked on every request
    def generation_endpoints(self) -> dict[str, Endpoint]:
        """The endpoints that make images, by name, in catalog order."""
        return {name: e for name, e in self.endpoints.items() if e.generates}

    def endpoint_for_path(self, path: str) -> str | None:
        for name, endpoint in self.endpoints.items():
            if endpoint.path == path:
                return name
        return None

    def check_request(self, endpoint: str, body: Any, headers: Mapping[str, str] | None = None,
                      region: str | None = None) -> Verdict:
        """Is this request valid for its model here, and if not, which rule and which error code."""
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


def _build_model(name: str, entry: dict[str, Any], size_rules: dict[str, SizeRule], endpoints: dict[str, Endpoint]) -> Model:
    return Model(
        name=name,
        family=entry["family"],
        same_as=entry.get("same_as"),
        endpoints=tuple(entry["endpoints"]),
        regions=tuple(entry["regions"]),
        n=Range(entry["n"]["min"], entry["n"]["max"], entry["n"].get("default", entry["n"]["min"])),
        size_rule=size_rules[entry["size_rule"]],
        prompt=TextLimit(**entry["prompt"]),
        negative_prompt=TextLimit(**entry["negative_prompt"]),
        input_images=ImageLimits(**{**entry["input_images"], "formats": tuple(entry["input_images"]["formats"]),
                                    "recommended_side": tuple(entry["input_images"].get("recommended_side") or ())}),
        parameters=frozenset(entry["parameters"]),
        rate_limit=RateLimit(**entry["rate_limit"]),
        price_per_image=entry["price_per_image"],
        free_quota_images=entry["free_quota_images"],
        cross_rules=tuple(CrossRule.from_data(rule) for rule in entry["cross_rules"]),
        sources=tuple(entry["sources"]),
        evidence=tuple(entry.get("evidence", ())),
        is_async=any(endpoints[e].is_async for e in entry["endpoints"]),
        is_sync=any(endpoints[e].is_sync_generation for e in entry["endpoints"]),
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


@cache
def _load_catalog(profile: str) -> Catalog:
    raw = raw_catalog(profile)
    endpoints = {name: Endpoint.from_data(name, data) for name, data in raw["endpoints"].items() if not name.startswith("$")}
    size_rules = {name: size_rule(name, data) for name, data in raw["size_rules"].items()}
    models = {name: _build_model(name, entry, size_rules, endpoints) for name, entry in resolved_entries(raw).items()}
    return Catalog(
        profile=raw["profile"],
        date=raw["date"],
        regions=raw["regions"],
        endpoints=endpoints,
        size_rules=size_rules,
        models=models,
        errors=read_json("error-codes.json")["errors"],
        raw=raw,
    )
