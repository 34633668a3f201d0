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
# What a target can be. embedded: the fake this suite starts; fake: a fake with the admin API
# (clock, keys); real: one of the service's domains; unknown: anything else without the admin API
# (a proxy, a gateway, another mock): it may bill, so it is treated with the real service's caution.
TARGET_KINDS = ("embedded", "fake", "real", "unknown")
BILLED_KINDS = ("real", "unknown")
# The money a run may spend on a target that may bill, unless --budget-usd says otherwise.
DEFAULT_BILLED_BUDGET_USD = 1.0
# Generated valid requests (each makes images) against a target that may bill, unless
# --max-examples says otherwise: enough to vary the request, few enough to fit the default budget.
BILLED_VALID_EXAMPLES = 5
FAIL_ON = ("warning", "breaking")  # the least severity that fails a run (info never does)


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
    max_examples: int               # Hypothesis examples per generated test
    real_time_limit: float          # seconds a task may take to finish without an admin clock
    extra: dict = field(default_factory=dict)
    admin_token: str | None = field(default=None, repr=False)  # a remote fake's admin token
    target: str | None = None       # the target kind, forced (--target) or detected by the CLI; None: detect
    fail_on: str = "warning"        # warning: any drift fails the run; breaking: only breaking findings do

    @property
    def embedded(self) -> bool:
        return self.base_url is None or self.target == "embedded"

    @property
    def points_at_real_service(self) -> bool:
        """The base URL is one of the real service's domains."""
        return self.base_url is not None and (urlsplit(self.base_url).hostname or "").endswith(REAL_HOST_SUFFIX)

    @property
    def billed(self) -> bool:
        """Plan and choose as if every image were paid for: the target kind, when known, says;
        before it is (plain pytest collecting), the base URL's domain."""
        return self.target in BILLED_KINDS if self.target else self.points_at_real_service

    def budget_usd_for(self, kind: str) -> float | None:
        """The money budget of a run against a target of `kind`: the one given, else the default
        for targets that may bill."""
        if self.budget_usd is not None:
            return self.budget_usd
        return DEFAULT_BILLED_BUDGET_USD if kind in BILLED_KINDS else None

    def valid_examples(self, kind: str) -> int:
        """How many generated valid (image-making) requests a run sends to a target of `kind`."""
        if kind in BILLED_KINDS and _env("MAX_EXAMPLES") is None:
            return min(self.max_examples, BILLED_VALID_EXAMPLES)
        return self.max_examples

    @property
    def fail_severities(self) -> tuple[str, ...]:
        return ("breaking",) if self.fail_on == "breaking" else ("breaking", "warning")

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
        target = _env("TARGET")
        if target is not None and target not in TARGET_KINDS:
            raise ValueError(f"{ENV}TARGET must be one of {', '.join(TARGET_KINDS)}, not {target!r}")
        fail_on = _env("FAIL_ON", "warning")
        if fail_on not in FAIL_ON:
            raise ValueError(f"{ENV}FAIL_ON must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
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
            target=target,
            fail_on=fail_on,
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
