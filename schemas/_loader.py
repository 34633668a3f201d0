"""Read the kit's JSON data files from the installed package and apply API profiles.

Everything is read once and cached: the fake and the contract suite call these functions on
hot paths and must never re-read files there.
"""

from __future__ import annotations

import copy
import json
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

DEFAULT_PROFILE = "current"
_SCHEMA_SUFFIX = ".schema.json"
# Schemas of the kit's own data files, not of API messages.
_DATA_SCHEMAS = ("catalog", "observations")


def _package_files() -> Traversable:
    return resources.files(__package__)


@cache
def read_json(relative_path: str) -> Any:
    """One data file of the package, parsed. Callers get the shared cached object: copy before mutating."""
    return json.loads((_package_files() / relative_path).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def schema_names() -> tuple[str, ...]:
    """Every message schema by name (file name without .schema.json); the data files' own schemas excluded."""
    names = [p.name[: -len(_SCHEMA_SUFFIX)] for p in _package_files().iterdir() if p.name.endswith(_SCHEMA_SUFFIX)]
    return tuple(sorted(n for n in names if n not in _DATA_SCHEMAS))


@lru_cache(maxsize=1)
def profile_names() -> tuple[str, ...]:
    return tuple(sorted(p.name[:-5] for p in (_package_files() / "profiles").iterdir() if p.name.endswith(".json")))


def profile_info(profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    if profile not in profile_names():
        raise KeyError(f"unknown API profile {profile!r}; known: {', '.join(profile_names())}")
    info: dict[str, Any] = read_json(f"profiles/{profile}.json")
    return info


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _profile_chain(profile: str) -> list[dict[str, Any]]:
    chain = []
    name: str | None = profile
    while name is not None:
        info = profile_info(name)
        chain.append(info)
        name = info.get("base")
    return list(reversed(chain))


@cache
def raw_catalog(profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """The catalog file with the profile's merge patches applied (families not yet resolved)."""
    catalog: dict[str, Any] = read_json("catalog.json")
    for info in _profile_chain(profile):
        catalog = merge_patch(catalog, info.get("catalog_patch") or {})
    return catalog


@cache
def _raw_schema(name: str, profile: str) -> dict[str, Any]:
    if name not in schema_names() and name not in _DATA_SCHEMAS:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(schema_names())}")
    schema: dict[str, Any] = read_json(f"{name}{_SCHEMA_SUFFIX}")
    for info in _profile_chain(profile):
        patch = (info.get("schema_patches") or {}).get(name)
        if patch:
            schema = merge_patch(schema, patch)
    return schema


@cache
def _bundled(name: str, profile: str) -> dict[str, Any]:
    root = copy.deepcopy(_raw_schema(name, profile))
    root.pop("$id", None)
    defs = root.setdefault("$defs", {})
    embedded: set[str] = set()

    def fix_ref(ref: str, home: str | None) -> str:
        target, _, fragment = ref.partition("#")
        if not target:  # a local ref, relative to the document it was written in
            return "#" + (f"/$defs/{home}" if home else "") + fragment
        key = target.removesuffix(_SCHEMA_SUFFIX)
        if key == name:
            return "#" + fragment
        embed(key)
        return f"#/$defs/{key}{fragment}"

    def rewrite(node: Any, home: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str):
                    node[k] = fix_ref(v, home)
                else:
                    rewrite(v, home)
        elif isinstance(node, list):
            for item in node:
                rewrite(item, home)

    def embed(key: str) -> None:
        if key in embedded:
            return
        embedded.add(key)
        sub = copy.deepcopy(_raw_schema(key, profile))
        for meta in ("$id", "$schema"):
            sub.pop(meta, None)
        defs[key] = sub
        rewrite(sub, key)

    own_defs = list(defs)
    for k, v in list(root.items()):
        if k == "$ref" and isinstance(v, str):
            root[k] = fix_ref(v, None)
        elif k != "$defs":
            rewrite(v, None)
    for key in own_defs:
        if key not in embedded:
            rewrite(defs[key], None)
    return root


def load_schema(name: str, profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """A message schema, self-contained: references to other files are inlined under $defs.

    Self-contained so that any tool (jsonschema, hypothesis-jsonschema, an OpenAPI document)
    can use it without a resolver. Returns a fresh copy the caller may change.
    """
    profile_info(profile)
    return copy.deepcopy(_bundled(name, profile))


def cached_schema(name: str, profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """Like load_schema, without the copy: for read-only callers on hot paths."""
    profile_info(profile)
    return _bundled(name, profile)
