"""Errors that carry their wire status, code and message; one handler renders the envelope."""

from __future__ import annotations

from typing import Any

from dashscope_schemas import Catalog, Violation


class DashScopeError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    @classmethod
    def from_catalog(cls, catalog: Catalog, key: str, message: str | None = None) -> DashScopeError:
        """An error of error-codes.json by its key, optionally with a more specific message."""
        wire = catalog.error(key)
        return cls(wire["status"], wire["code"], message or wire["message"])

    @classmethod
    def from_violation(cls, violation: Violation) -> DashScopeError:
        return cls(violation.status, violation.code, violation.message)

    def envelope(self, request_id: str) -> dict[str, Any]:
        return {"request_id": request_id, "code": self.code, "message": self.message}


def invalid_parameter(catalog: Catalog, field: str, reason: str) -> DashScopeError:
    """400 InvalidParameter naming the field, like the catalog rules' messages."""
    return DashScopeError.from_catalog(catalog, "invalid_parameter", f"{field}: {reason}" if field else reason)
