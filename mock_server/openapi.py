"""An OpenAPI 3.1 document of the faked API, assembled from schemas/ (never written twice).

Each message schema becomes components/schemas/<name>; its internal references ("#/$defs/..")
are re-rooted under that component, because in an OpenAPI document "#" is the document.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import dashscope_schemas as ds
from dashscope_schemas.paths import is_field, schema_at
from dashscope_schemas.rules import image_ref_pattern

ERROR_STATUSES = {"400": "Invalid request (InvalidParameter, DataInspectionFailed, UnsupportedOperation, Arrearage ...)",
                  "401": "InvalidApiKey: no key, or a key of another region",
                  "403": "AccessDenied (async-only endpoint without X-DashScope-Async) or AllocationQuota.FreeTierOnly",
                  "429": "Throttling.RateQuota / Throttling.AllocationQuota",
                  "500": "InternalError"}


def _reroot(node: Any, component: str) -> Any:
    if isinstance(node, dict):
        return {k: (f"#/components/schemas/{component}/{v[2:]}" if k == "$ref" and isinstance(v, str) and v.startswith("#/")
                    else _reroot(v, component)) for k, v in node.items()}
    if isinstance(node, list):
        return [_reroot(item, component) for item in node]
    return node


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {s: _json("error", ERROR_STATUSES[s]) for s in statuses}


AUTH: list[dict[str, list[str]]] = [{"dashscopeKey": []}]
# YYYYMMDDhhmmss with real months, days 01-31 (a day past the month's end rolls over), hours, minutes, seconds.
# The list's paging bounds: page_size as documented; page_no is the fake's own bound (the pages
# give none), far past the last page of any store.
MAX_PAGE_SIZE, MAX_PAGE_NO = 100, 10**9
LIST_TIME_PATTERN = "^[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$"
ASYNC_HEADER = {"name": "X-DashScope-Async", "in": "header", "required": True,
                "description": "Must be enable: these endpoints are asynchronous only (else 403 AccessDenied).",
                "schema": {"type": "string", "enum": ["enable"]}}
OSS_HEADER = {"name": "X-DashScope-OssResourceResolve", "in": "header", "required": False,
              "description": "enable when an input is an oss:// key from an upload; any other value is ignored.",
              "schema": {"type": "string"}}
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _merge(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in more.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _field(path: str, leaf: dict[str, Any], required: bool) -> dict[str, Any]:
    """`leaf` at a plain dotted path of the body, the path's fields required or not."""
    assert is_field(path), path
    for name in reversed(path.split(".")):
        leaf = {"properties": {name: leaf}, **({"required": [name]} if required else {})}
    return leaf


def _model_rules(model: ds.Model, endpoint: ds.Endpoint) -> dict[str, Any]:
    """The catalog's rules for `model` that JSON Schema can say, as the fake applies them (rules.py):
    n's range, the size rule where the model takes a size, the number of input images and their
    references, and the cross-field rules. What it cannot say is in the size's description (a
    pixel area) or in image_ref_pattern's docstring (the data must be an image)."""
    parameters: dict[str, Any] = {"n": {"minimum": model.n.min, "maximum": model.n.max}}
    if "size" in model.parameters:
        parameters["size"] = model.size_rule.json_schema()
    rules: dict[str, Any] = {"properties": {"parameters": {"properties": parameters}}}
    if endpoint.images_path:
        limits = model.input_images
        rules = _merge(rules, schema_at(endpoint.images_path, (limits.min, limits.max), {"pattern": image_ref_pattern(limits.formats)}))
    cross = []
    for rule in model.cross_rules:
        default = model.default_n if rule.default_from == "n" else None
        cross.append({"if": _field(rule.if_present, {}, required=True),
                      "then": _field(rule.require_path, {"const": rule.require_equals}, required=default != rule.require_equals)})
    return {**rules, "allOf": cross} if cross else rules


def _per_model(endpoint: ds.Endpoint, models: list[ds.Model]) -> list[dict[str, Any]]:
    """One schema per set of models with the same rules, each naming its models."""
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for model in models:
        rules = _model_rules(model, endpoint)
        groups.setdefault(json.dumps(rules, sort_keys=True), (rules, []))[1].append(model.name)
    return [_merge(rules, {"properties": {"model": {"enum": names}}}) for rules, names in groups.values()]


def _generation(endpoint: ds.Endpoint, catalog: ds.Catalog) -> dict[str, Any]:
    assert endpoint.request_schema is not None
    models = sorted((m for m in catalog.models.values() if endpoint.name in m.endpoints), key=lambda m: m.name)
    stream_header = {"name": "X-DashScope-SSE", "in": "header", "required": False, "schema": {"type": "string"},
                     "description": "enable for server-sent events (one result event per image); any other value is ignored."}
    return {
        "description": ("Models: " + ", ".join(m.name for m in models) + ". The body is checked per model (the catalog's n, "
                        "size, input image and cross-field rules); a pixel-area size rule, image data that is not an "
                        "image and oss:// keys not uploaded by this account are refused too, though no schema says so."),
        "parameters": ([ASYNC_HEADER] if endpoint.is_async else [stream_header]) + [OSS_HEADER],
        # The message schema, narrowed to the models this endpoint serves (others: 400 by the
        # catalog) and to each model's rules.
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "allOf": [_ref(endpoint.request_schema), {"anyOf": _per_model(endpoint, models)}]}}}},
    }


def _stream_events() -> dict[str, Any]:
    """The text/event-stream answer of the synchronous endpoint: one schema per event (id, event
    (result or error) and data, the JSON of a stream chunk or an error)."""
    return {"schema": {
        "type": "object", "required": ["event", "data"],
        "properties": {"id": {"type": "string"}, "event": {"enum": ["result", "error"]},
                       "data": {"type": "string", "contentMediaType": "application/json",
                                "contentSchema": {"oneOf": [_ref("multimodal-generation.stream-chunk"), _ref("error")]}}}}}


def _route_parameters(catalog: ds.Catalog) -> dict[str, list[dict[str, Any]]]:
    """The parameters of the routes that are not generation endpoints, by endpoint name."""
    statuses = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"]
    return {
        "task-query": [TASK_ID],
        "task-cancel": [TASK_ID],
        "task-list": [
            {"name": "page_no", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_NO, "default": 1}},
            {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 10}},
            {"name": "start_time", "in": "query", "schema": {"type": "string", "pattern": LIST_TIME_PATTERN}},
            {"name": "end_time", "in": "query", "schema": {"type": "string", "pattern": LIST_TIME_PATTERN}},
            {"name": "model_name", "in": "query", "schema": {"type": "string"}},
            {"name": "api_key_id", "in": "query", "schema": {"type": "string"}},
            {"name": "region", "in": "query", "schema": {"type": "string"}},
            {"name": "status", "in": "query", "schema": {"type": "string", "enum": statuses}},
        ],
        "upload-policy": [
            {"name": "action", "in": "query", "required": True, "schema": {"type": "string", "enum": ["getPolicy"]}},
            # Any model of the platform gets a policy (observation upload-policy-any-model), not only these.
            {"name": "model", "in": "query", "required": True,
             "schema": {"type": "string", "minLength": 1, "examples": sorted(catalog.models)}}],
    }


def _operation(endpoint: ds.Endpoint, catalog: ds.Catalog) -> dict[str, Any]:
    assert endpoint.response_schema is not None
    operation: dict[str, Any] = {
        "operationId": endpoint.name.replace("-", "_"), "summary": endpoint.summary, "security": AUTH,
        "parameters": _route_parameters(catalog).get(endpoint.name, []),
        "responses": {"200": _json(endpoint.response_schema, endpoint.summary),
                      **_errors(*(str(s) for s in sorted(endpoint.statuses) if s >= 400))},
    }
    if endpoint.generates:
        operation.update(_generation(endpoint, catalog))
    if endpoint.is_sync_generation:
        operation["responses"]["200"]["content"]["text/event-stream"] = _stream_events()
    return operation


@cache
def openapi_document(profile: str = ds.DEFAULT_PROFILE) -> dict[str, Any]:
    """The API below a region's base URL, from the catalog's endpoints (the OSS-like upload host
    and result objects are other hosts of the real service, not part of this API)."""
    catalog = ds.load_catalog(profile)
    names = [n for n in ds.schema_names() if n != "common"]
    components = {name: _reroot(ds.load_schema(name, profile), name) for name in names}
    for schema in components.values():
        schema.pop("$schema", None)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in catalog.endpoints.values():
        if endpoint.under_api:
            paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, catalog)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "DashScope image APIs (as faked by dashscope-mock)", "version": f"profile {catalog.profile} ({catalog.date})",
                 "description": "Assembled from the kit's JSON Schemas and catalog, taken from the official API pages."},
        "servers": [{"url": "/{region}/api/v1", "description": "dashscope-mock (path prefix per region)",
                     "variables": {"region": {"default": "cn-beijing", "enum": sorted(catalog.regions)}}}]
                   + [{"url": info["base_url"], "description": f"the real service, {region}"} for region, info in catalog.regions.items()],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"dashscopeKey": {"type": "http", "scheme": "bearer",
                                                            "description": "Authorization: Bearer sk-..., a key of the region"}}},
    }
