"""The fake's settings: embedded defaults, overridden by a JSON or TOML file and the command line."""

from __future__ import annotations

import dataclasses
import json
import secrets
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from dashscope_schemas import merge_patch, profile_names

from .domain.tasks import Timing

FAST_TIMING = {"mode": "polls", "pending": 0, "running": 0}


def _defaults() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((resources.files(__package__) / "defaults" / "config.json").read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Config:
    profile: str
    default_region: str
    keys_file: str | None
    task_ttl: float
    url_ttl: float
    sync_url_ttl: float
    max_body_bytes: int
    signing_secret: str
    timing: dict[str, Any] = field(repr=False)
    rate_limits: dict[str, Any] = field(default_factory=lambda: {"enabled": True, "scale": 1.0, "task_api_per_second": 20})
    scenarios: list[Any] = field(default_factory=list, repr=False)
    read_timeout: float = 30.0
    admin_token: str | None = field(default=None, repr=False)
    max_upload_mb: int = 100
    journal_entries: int = 1000        # GET /__admin/requests: the last N API requests (0: none kept)
    journal_body_bytes: int = 65536    # the first bytes of each request body it keeps
    # Where the state lives: memory: (this process), sqlite:///path/state.db, redis://host:port/db
    # (stores/__init__.py).
    store: str = "memory:"
    signing_secret_given: bool = field(default=False, repr=False)  # set by the config, not made up per instance

    def timing_for(self, model: str) -> Timing:
        return self._timings.get(model) or self._timings[""]

    @cached_property
    def _timings(self) -> dict[str, Timing]:
        """Each configured model's timing, and the default under "": read once, not per task."""
        models = self.timing.get("models", {})
        return {"": Timing.from_data(self.timing["default"]), **{model: Timing.from_data(data) for model, data in models.items() if data}}

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> Config:
        """Defaults, then the file (if any), then keyword overrides (None means 'not given')."""
        data = _defaults()
        if path:
            text = Path(path).read_text(encoding="utf-8")
            data = merge_patch(data, tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text))
        data = merge_patch(data, {k: v for k, v in overrides.items() if v is not None})
        if data["profile"] not in profile_names():
            raise ValueError(f"unknown profile {data['profile']!r}; known: {', '.join(profile_names())}")
        config = cls(
            profile=data["profile"], default_region=data["default_region"], keys_file=data.get("keys_file"),
            task_ttl=float(data["task_ttl_seconds"]), url_ttl=float(data["url_ttl_seconds"]),
            sync_url_ttl=float(data["sync_url_ttl_seconds"]), max_upload_mb=int(data["max_upload_mb"]),
            max_body_bytes=int(data["max_body_bytes"]),
            # No configured secret: a random one per instance, so nobody who merely knows an image
            # id (or read this package) can mint a valid result or upload URL.
            signing_secret=str(data.get("signing_secret") or secrets.token_urlsafe(32)),
            timing=data["timing"], rate_limits=dict(data.get("rate_limits") or {}),
            scenarios=list(data.get("scenarios") or []),
            read_timeout=float(data["read_timeout_seconds"]),
            admin_token=data.get("admin_token") or None,
            journal_entries=int(data["journal_entries"]), journal_body_bytes=int(data["journal_body_bytes"]),
            store=str(data.get("store") or "memory:"), signing_secret_given=bool(data.get("signing_secret")),
        )
        if not 0 < config.read_timeout <= 3600:
            raise ValueError("read_timeout_seconds must be in (0, 3600]")
        if not 1 <= config.max_upload_mb <= 1024:
            raise ValueError("max_upload_mb must be in [1, 1024]")
        if not 0 <= config.journal_entries <= 1_000_000:
            raise ValueError("journal_entries must be in [0, 1000000]")
        if not 0 <= config.journal_body_bytes <= 64 * 1024 * 1024:
            raise ValueError("journal_body_bytes must be in [0, 67108864]")
        if float(config.rate_limits.get("scale", 1.0)) <= 0:
            raise ValueError("rate_limits.scale must be positive")
        config.timing_for("")  # fail at start, not on the first request, if a timing is malformed
        return config

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)  # the fields only (not what is cached from them)

    def with_fast_tasks(self) -> Config:
        """Every task finishes on its first poll."""
        return self.replace(timing={"default": FAST_TIMING, "models": {}})
