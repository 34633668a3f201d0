"""An OpenAPI 3.1 document of the faked API, assembled from schemas/ (never written twice).

Each message schema becomes components/schemas/<name>; its internal references ("#/$defs/..")
are re-rooted under that component, because in an OpenAPI document "#" is the document.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import dashscope_schemas as ds

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


AUTH = [{"dashscopeKey": []}]
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


def _generation(endpoint: str, catalog: ds.Catalog, summary: str, async_: bool) -> dict[str, Any]:
    info = catalog.endpoints[endpoint]
    models = sorted(name for name, m in catalog.models.items() if endpoint in m.endpoints)
    operation: dict[str, Any] = {
        "operationId": endpoint.replace("-", "_"),
        "summary": summary,
        "description": "Models: " + ", ".join(models) + ". Per-model rules (n, size, images) are in the kit's catalog.",
        "security": AUTH,
        "parameters": ([ASYNC_HEADER] if async_ else [
            {"name": "X-DashScope-SSE", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "enable for server-sent events (one result event per image); any other value is ignored."}]) + [OSS_HEADER],
        # The message schema, narrowed to the models this endpoint serves (others: 400 by the catalog).
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "allOf": [_ref(info["request_schema"]), {"properties": {"model": {"enum": models}}}]}}}},
        "responses": {"200": _json(info["response_schema"], "Task created (always 200)" if async_ else "The images"),
                      **_errors("400", "401", "403", "429", "500")},
    }
    if not async_:
        # One schema per event: id, event (result or error) and data, the JSON of a stream chunk or an error.
        operation["responses"]["200"]["content"]["text/event-stream"] = {"schema": {
            "type": "object", "required": ["event", "data"],
            "properties": {"id": {"type": "string"}, "event": {"enum": ["result", "error"]},
                           "data": {"type": "string", "contentMediaType": "application/json",
                                    "contentSchema": {"oneOf": [_ref("multimodal-generation.stream-chunk"), _ref("error")]}}}}}
    return {"post": operation}


@lru_cache(maxsize=None)
def openapi_document(profile: str = ds.DEFAULT_PROFILE) -> dict[str, Any]:
    catalog = ds.load_catalog(profile)
    names = [n for n in ds.schema_names() if n != "common"]
    components = {name: _reroot(ds.load_schema(name, profile), name) for name in names}
    for schema in components.values():
        schema.pop("$schema", None)
    paths = {
        catalog.endpoints["multimodal-generation"]["path"]: _generation(
            "multimodal-generation", catalog, "Image editing and text-to-image, synchronous", False),
        catalog.endpoints["text2image"]["path"]: _generation("text2image", catalog, "Text-to-image task (async)", True),
        catalog.endpoints["image2image"]["path"]: _generation("image2image", catalog, "Image-to-image task (async)", True),
        "/tasks/{task_id}": {"get": {
            "operationId": "get_task", "summary": "A task's status and results; unknown or expired ids answer UNKNOWN",
            "security": AUTH, "parameters": [TASK_ID],
            "responses": {"200": _json("task-query.response", "The task"), **_errors("401", "429")}}},
        "/tasks/{task_id}/cancel": {"post": {
            "operationId": "cancel_task", "summary": "Cancel a PENDING task", "security": AUTH, "parameters": [TASK_ID],
            "responses": {"200": _json("task-cancel.response", "Cancelled"), **_errors("400", "401", "429")}}},
        "/tasks": {"get": {
            "operationId": "list_tasks", "summary": "The account's tasks in this region, newest first", "security": AUTH,
            "parameters": [
                {"name": "page_no", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_NO, "default": 1}},
                {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                                                                "default": 10}},
                {"name": "start_time", "in": "query", "schema": {"type": "string", "pattern": LIST_TIME_PATTERN}},
                {"name": "end_time", "in": "query", "schema": {"type": "string", "pattern": LIST_TIME_PATTERN}},
                {"name": "model_name", "in": "query", "schema": {"type": "string"}},
                {"name": "api_key_id", "in": "query", "schema": {"type": "string"}},
                {"name": "region", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"]}},
            ],
            "responses": {"200": _json("task-list.response", "A page of tasks"), **_errors("400", "401", "429")}}},
        "/uploads": {"get": {
            "operationId": "get_upload_policy", "summary": "An upload policy for a local file (the SDK's file:// inputs)",
            "security": AUTH, "parameters": [
                {"name": "action", "in": "query", "required": True, "schema": {"type": "string", "enum": ["getPolicy"]}},
                {"name": "model", "in": "query", "required": True, "schema": {"type": "string", "enum": sorted(catalog.models)}}],
            "responses": {"200": _json("upload-policy.response", "Where and how to upload"), **_errors("400", "401")}}},
    }
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
