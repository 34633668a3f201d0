"""The single source of truth of the DashScope image kit: JSON Schemas, the model catalog and
API profiles, taken from the official API pages, with a small API to use them.

    >>> from dashscope_schemas import load_schema, load_catalog, validate
    >>> validate({"request_id": "r", "code": "InvalidApiKey", "message": "m"}, "error")
    []
    >>> catalog = load_catalog("2025-12")
    >>> [name for name, endpoint in catalog.endpoints.items() if endpoint.generates]
    >>> verdict = catalog.check_request(endpoint_name, body, headers)
    >>> verdict.error.rule, verdict.error.code
"""

from ._loader import (
    DEFAULT_PROFILE,
    load_schema,
    merge_patch,
    profile_info,
    profile_names,
    schema_names,
)
from .catalog import Catalog, Endpoint, Model, load_catalog
from .paths import get_path, items_at, values_at
from .rules import GenerationRequest, InputImage, Verdict, Violation, check_request
from .sizes import SizeRule, format_size, output_size, parse_size, size_violation
from .validation import ValidationIssue, is_valid, validate

__all__ = [
    "DEFAULT_PROFILE", "Catalog", "Endpoint", "GenerationRequest", "InputImage", "Model", "SizeRule", "ValidationIssue",
    "Verdict", "Violation", "check_request", "format_size", "get_path", "is_valid", "items_at", "load_catalog", "load_schema",
    "merge_patch", "output_size", "parse_size", "profile_info", "profile_names", "schema_names", "size_violation", "validate",
    "values_at",
]
