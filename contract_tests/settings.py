"""What a contract run checks and against what: environment variables (the SDK's two, plus the
suite's own DASHSCOPE_CONTRACT_*), which `dashscope-contract run` sets from its options."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload
from urllib.parse import urlsplit

import dashscope_schemas as ds

ENV = "DASHSCOPE_CONTRACT_"
NO_KEY = "DASHSCOPE_HTTP_BASE_URL is set but DASHSCOPE_API_KEY is not"
REAL_HOST_SUFFIX = ".aliyuncs.com"


@overload
def _env(name: str) -> str | None: ...
@overload
def _env(name: str, default: str) -> str: ...
def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV + name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    base_url: str | None            # None: start the embedded fake
    api_key: str | None
    profile: str                    # the API profile the target is checked against
    region: str | None              # None: inferred from the base URL
    other_account_key: str | None   # a key of another account in the same region (isolation)
    other_region_key: str | None    # a key of the same account in another region (wrong-region check)
    models: tuple[str, ...]         # () = every model of the profile the target's region serves
    budget_images: int | None       # at most this many generated images (None: no limit)
    budget_usd: float | None        # at most this much money at the catalog's prices
    dry_run: bool
    record_dir: Path | None
    report_dir: Path
    max_examples: int
    real_time_limit: float          # seconds a task may take to finish without an admin clock
    extra: dict = field(default_factory=dict)
    admin_token: str | None = field(default=None, repr=False)  # a remote fake's admin token

    @property
    def embedded(self) -> bool:
        return self.base_url is None

    @property
    def points_at_real_service(self) -> bool:
        """The base URL is one of the real service's domains: plan and choose as if billed."""
        return self.base_url is not None and (urlsplit(self.base_url).hostname or "").endswith(REAL_HOST_SUFFIX)

    def case_region(self, catalog: ds.Catalog) -> str:
        """The region the catalog cases are built for, before the target itself is probed."""
        inferred = region_of_base_url(self.base_url, catalog)[0] if self.base_url else None
        return self.region or inferred or "cn-beijing"

    @classmethod
    def from_env(cls) -> Settings:
        profile = _env("PROFILE", ds.DEFAULT_PROFILE)
        ds.profile_info(profile)  # fail early on a typo
        models = tuple(m.strip() for m in (_env("MODELS") or "").split(",") if m.strip())
        unknown = [m for m in models if ds.load_catalog(profile).model(m) is None]
        if unknown:
            raise ValueError(f"{ENV}MODELS names models the {profile} profile does not have: {', '.join(unknown)}")
        budget_images = _env("BUDGET_IMAGES")
        budget_usd = _env("BUDGET_USD")
        record = _env("RECORD")
        return cls(
            base_url=(os.environ.get("DASHSCOPE_HTTP_BASE_URL") or "").rstrip("/") or None,
            api_key=os.environ.get("DASHSCOPE_API_KEY") or None,
            profile=profile,
            region=_env("REGION"),
            other_account_key=_env("OTHER_ACCOUNT_KEY"),
            other_region_key=_env("OTHER_REGION_KEY"),
            models=models,
            budget_images=int(budget_images) if budget_images else None,
            budget_usd=float(budget_usd) if budget_usd else None,
            dry_run=_env("DRY_RUN", "") in ("1", "true", "yes"),
            record_dir=Path(record) if record else None,
            report_dir=Path(_env("REPORT_DIR", "contract-report")),
            max_examples=int(_env("MAX_EXAMPLES", "25")),
            real_time_limit=float(_env("TASK_TIMEOUT", "300")),
            admin_token=_env("ADMIN_TOKEN"),
        )


def region_of_base_url(base_url: str, catalog: ds.Catalog) -> tuple[str | None, str]:
    """(region, origin) of a base URL: a region path prefix (the fake) or a real domain."""
    parts = urlsplit(base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[0] in catalog.regions:
        return segments[0], origin
    for region, info in catalog.regions.items():
        if urlsplit(info["base_url"]).hostname == parts.hostname:
            return region, origin
    return None, origin
