"""The fake DashScope backend: API verbs over the catalog, the store, the clock and the keys.

No HTTP here (moto's models.py): the api/ modules parse requests, call these verbs and render
what they return; failures are DashScopeError values carrying their wire status and code.
"""

from __future__ import annotations

import math
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dashscope_schemas import Catalog, GenerationRequest, InputImage, Model, load_catalog, output_size

from . import images
from .accounts import ApiKey, KeyRing, load_keys
from .clock import Clock, ControllableClock
from .config import Config
from .domain import tasks as domain
from .domain.billing import Ledger
from .domain.limits import RateLimiter
from .domain.tasks import ImageOutcome, Task, Timing
from .errors import DashScopeError, invalid_parameter
from .scenarios import Scenario, ScenarioBook
from .store import ImageRecord, MemoryStore, Store, TaskQuery
from .uploads import UPLOAD_TTL_SECONDS, Uploader, UploadRecord, UploadRejected

# Task and result times are printed in the service's local time, China Standard Time, as in
# every example of the pages (no zone is written).
SERVICE_TZ = timezone(timedelta(hours=8))
RESULT_PREFIX = "results/"
_RESULT_PATH_CONVERTER = re.compile(r":\w+}")
# The error (a key of error-codes.json) each failing scenario effect answers with unless it names one.
FAILURE_DEFAULTS = {"task_failed": "internal_error", "partial_failure": "internal_timeout",
                    "output_moderation": "data_inspection_failed"}
# Housekeeping in bounded batches: a request frees at most REQUEST_SWEEP expired records on its
# way (enough to keep up with what it adds), the background sweep SWEEP_BATCH between yields.
REQUEST_SWEEP = 64
SWEEP_BATCH = 500
_EXTEND_SUFFIX = ". Rendered with rich detail, balanced composition and natural light."


def _actual_prompt(request: GenerationRequest) -> str:
    """The prompt the model used: truncated to the limit, and 'rewritten' when prompt_extend is on."""
    return request.prompt.rstrip(". ") + _EXTEND_SUFFIX if request.prompt_extend else request.prompt


def format_time(epoch: float) -> str:
    """YYYY-MM-DD HH:mm:ss.SSS"""
    return datetime.fromtimestamp(epoch, SERVICE_TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def parse_list_time(text: str) -> float:
    """The task list's YYYYMMDDhhmmss, in service time. A day past the end of its month rolls
    over (20230230 is March 2), so every string of the documented pattern is a time."""
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:8])
    start = datetime(max(year, 1), month, 1, int(text[8:10]), int(text[10:12]), int(text[12:14]), tzinfo=SERVICE_TZ)
    return (start + timedelta(days=day - 1)).timestamp()


@dataclass(frozen=True)
class ListFilters:
    """The task list's filters, parsed; None or an infinite bound: not given."""

    model_name: str | None = None
    api_key_id: str | None = None
    region: str | None = None
    status: str | None = None
    start_time: float = -math.inf
    end_time: float = math.inf


@dataclass(frozen=True)
class SyncResult:
    image_ids: tuple[str, ...]
    width: int
    height: int


class FakeDashScope:
    def __init__(self, config: Config, *, clock: Clock | None = None, store: Store | None = None,
                 keys: KeyRing | None = None, new_id: Callable[[], str] = lambda: str(uuid.uuid4())):
        self.config = config
        self.catalog: Catalog = load_catalog(config.profile)
        self.clock = clock or ControllableClock()
        self.store = store or MemoryStore(config.task_ttl)
        self.keys = keys or load_keys(config.keys_file)
        self.signer = images.UrlSigner(config.signing_secret.encode("utf-8"))
        self.uploader = Uploader(config.signing_secret.encode("utf-8") + b"/uploads", self.signer.access_key_id,
                                 upload_path=self.catalog.endpoints["upload"].path)
        self.new_id = new_id
        self.scenarios = ScenarioBook(self.catalog)
        self.limiter = RateLimiter(config.rate_limits.get("scale", 1.0))
        self.ledger = Ledger()
        self.load_scenarios(config.scenarios)
        unknown = {k.region for k in self.keys.all()} - set(self.catalog.regions)
        if unknown:
            raise ValueError(f"keys for regions the catalog does not know: {', '.join(sorted(unknown))}")

    # --- who is calling ---------------------------------------------------------------------

    def authenticate(self, authorization: str | None, region: str) -> ApiKey:
        scheme, _, key = (authorization or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise DashScopeError.from_catalog(self.catalog, "no_api_key")
        found = self.keys.lookup(key)
        if found is None or found.region != region:
            raise DashScopeError.from_catalog(self.catalog, "invalid_api_key")
        return found

    # --- generation ---------------------------------------------------------------------------

    def check(self, endpoint: str, body: Any, headers: dict[str, str], region: str) -> GenerationRequest:
        verdict = self.catalog.check_request(endpoint, body, headers, region)
        if verdict.error:
            raise DashScopeError.from_violation(verdict.error)
        assert verdict.request is not None
        return verdict.request

    def _input_bytes(self, key: ApiKey, image: InputImage, resolve_oss: bool) -> bytes | None:
        """The bytes behind an input image when the fake has them: a data URI, or an upload."""
        if image.data is not None:
            return image.data
        if not image.ref.startswith("oss://"):
            return None
        upload = self.store.get_upload(image.ref.removeprefix("oss://")) if resolve_oss else None
        if upload is None or upload.expires <= self.clock.now() or (upload.account, upload.region) != (key.account, key.region):
            # Without X-DashScope-OssResourceResolve the service tries to download oss:// as a URL.
            raise DashScopeError.from_catalog(self.catalog, "data_inspection_download")
        return upload.data

    def _last_input_size(self, key: ApiKey, request: GenerationRequest, resolve_oss: bool) -> tuple[int, int] | None:
        """Dimensions of the last input image: read from its bytes (data URI or upload), or
        announced by a URL's file name (W-H, WxH); the fake downloads nothing. None: unknown (1:1)."""
        size = None
        allowed = {f.replace("jpg", "jpeg") for f in request.model.input_images["formats"]}
        for index, image in enumerate(request.images):
            data = self._input_bytes(key, image, resolve_oss)
            if data is None:
                size = images.size_from_url(image.ref)
                continue
            try:
                fmt, width, height = images.read_image(data)
            except images.InvalidImage:
                raise invalid_parameter(self.catalog, f"input image {index + 1}", "not a readable image") from None
            if fmt.replace("mpo", "jpeg") not in allowed:
                raise invalid_parameter(self.catalog, f"input image {index + 1}",
                                        f"{fmt} images are not accepted; use {', '.join(request.model.input_images['formats'])}")
            size = (width, height)
        return size

    def _outcomes(self, image_ids: list[str], scenario: Scenario | None) -> tuple[tuple[ImageOutcome, ...], tuple[str, str] | None]:
        """Each requested image's fate, and the failure of the whole task if a scenario says so."""
        outcomes = [ImageOutcome(i) for i in image_ids]
        effect = scenario.effect if scenario else {}
        kind = effect.get("type")
        if kind == "partial_failure":
            code, message = self._error_of(effect, FAILURE_DEFAULTS[kind])
            for index in range(max(0, len(outcomes) - effect.get("failed", 1)), len(outcomes)):
                outcomes[index] = ImageOutcome(None, code, message)
        failure = self._error_of(effect, FAILURE_DEFAULTS[kind]) if kind in ("task_failed", "output_moderation") else None
        return tuple(outcomes), failure

    def _error_of(self, effect: dict[str, Any], default: str) -> tuple[str, str]:
        wire = self.catalog.error(effect.get("error", default))
        return effect.get("code", wire["code"]), effect.get("message", wire["message"])

    def error_for(self, effect: dict[str, Any], default: str, status: int) -> DashScopeError:
        """The error a scenario effect answers with: an error-codes.json key, or status/code/message."""
        if "error" in effect or "code" not in effect:
            wire = self.catalog.error(effect.get("error", default))
            return DashScopeError(effect.get("status", wire["status"]), wire["code"], effect.get("message", wire["message"]))
        return DashScopeError(effect.get("status", status), effect["code"], effect.get("message", effect["code"]))

    def _plan(self, key: ApiKey, request: GenerationRequest, now: float, resolve_oss: bool) -> tuple[int, int, int, list[str]]:
        width, height = output_size(request.model.size_rule, request.size, self._last_input_size(key, request, resolve_oss))
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        actual = _actual_prompt(request)
        # Result images live until the last moment a URL to them can still be valid.
        lifetime = self.config.task_ttl + self.config.url_ttl
        image_ids = []
        for index in range(request.n):
            image_id = self.new_id()
            self.store.put_image(ImageRecord(image_id, actual, seed, index, width, height, now + lifetime))
            image_ids.append(image_id)
        return width, height, seed, image_ids

    def admit(self, key: ApiKey, request: GenerationRequest) -> None:
        """Rate limits and the free-tier-only mode, before anything is generated."""
        now, model = self.clock.now(), request.model
        limits = model.rate_limit
        if self.config.rate_limits.get("enabled", True):
            if limits["requests"] and not self.limiter.allow((key.account, key.region, model.name), limits["requests"], limits["per"], now):
                raise DashScopeError.from_catalog(self.catalog, "rate_quota")
            if self.catalog.endpoints[request.endpoint].is_async and limits["concurrent_tasks"]:
                active = self.active_tasks(key, model.name, now)
                if not self.limiter.concurrency_allows(active, limits["concurrent_tasks"]):
                    raise DashScopeError.from_catalog(self.catalog, "rate_quota")
        if self.ledger.refuses(key.account, key.region, model.name, model.free_quota_images.get(key.region)):
            raise DashScopeError.from_catalog(self.catalog, "free_tier_only")

    def active_tasks(self, key: ApiKey, model: str, now: float) -> int:
        """The caller's PENDING and RUNNING tasks of a model: two index counts, not a scan."""
        self._catch_up(now)
        alive = self._alive_from(now)
        return sum(self.store.query(TaskQuery(key.account, key.region, model=model, status=status, submitted_from=alive))[1]
                   for status in domain.ACTIVE)

    def _alive_from(self, now: float) -> float:
        """The earliest submit time of a task not yet expired at `now` (expired ones may still be
        stored until the sweep reaches them; queries leave them out by this bound)."""
        return math.nextafter(now - self.config.task_ttl, math.inf)

    def _catch_up(self, now: float, limit: int | None = None) -> int:
        """Write back the tasks whose status changed with time, so status indexes are true at `now`."""
        done = 0
        while limit is None or done < limit:
            due = self.store.due(now, SWEEP_BATCH if limit is None else min(SWEEP_BATCH, limit - done))
            if not due:
                break
            for task in due:
                self.store.update(domain.observe(task, now))
            done += len(due)
        return done

    def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Some housekeeping on the clock: records past their time, then status changes due; at
        most about `limit` records each call, so a caller can yield between calls. 0: all done."""
        now = self.clock.now()
        done = self.store.expire(now, limit)  # first: an expired task's due change is no work left
        return done + self._catch_up(now, max(0, limit - done))

    def _charge(self, key: ApiKey, model: Model, images_made: int) -> None:
        self.ledger.charge(key.account, key.region, model.name, images_made, model.price_per_image.get(key.region),
                           model.free_quota_images.get(key.region))

    def generate_sync(self, key: ApiKey, request: GenerationRequest, *, resolve_oss: bool = False,
                      scenario: Scenario | None = None) -> SyncResult:
        width, height, _, image_ids = self._plan(key, request, self.clock.now(), resolve_oss)
        outcomes, failure = self._outcomes(image_ids, scenario)
        if failure is not None or not any(o.ok for o in outcomes):
            effect = scenario.effect if scenario else {}
            raise self.error_for(effect, FAILURE_DEFAULTS.get(str(effect.get("type")), "internal_error"), 500)
        made = tuple(o.image_id for o in outcomes if o.ok and o.image_id)
        self._charge(key, request.model, len(made))
        return SyncResult(made, width, height)

    def create_task(self, key: ApiKey, request: GenerationRequest, *, resolve_oss: bool = False,
                    scenario: Scenario | None = None) -> Task:
        now = self.clock.now()
        self.store.expire(now, REQUEST_SWEEP)
        width, height, seed, image_ids = self._plan(key, request, now, resolve_oss)
        outcomes, failure = self._outcomes(image_ids, scenario)
        timing = self.config.timing_for(request.model.name)
        effect = scenario.effect if scenario else {}
        if effect.get("type") == "latency":
            timing = Timing(timing.mode, timing.pending + effect.get("pending_seconds", 0),
                            timing.running + effect.get("running_seconds", 0))
        # The task keeps what the service keeps of the prompt: the text truncated at the model's
        # limit, not a 45 MiB body's worth for 24 hours.
        task = domain.create(Task(
            task_id=self.new_id(), account=key.account, region=key.region, api_key_id=key.key_id,
            model=request.model.name, endpoint=request.endpoint, orig_prompt=request.prompt,
            actual_prompt=_actual_prompt(request), seed=seed, width=width, height=height, timing=timing,
            outcomes=outcomes, failure=failure,
        ), now)
        self.store.create(task)
        # Booked when accepted (the outcome is fixed then); a cancel gives it back.
        self._charge(key, request.model, task.succeeded_if_finished)
        return task

    # --- tasks ------------------------------------------------------------------------------

    def _owned(self, key: ApiKey, task_id: str, now: float) -> Task | None:
        """The caller's task, or None: unknown, expired and other accounts' ids look the same."""
        self.store.expire(now, REQUEST_SWEEP)
        task = self.store.get(task_id)
        if task is None or (task.account, task.region) != (key.account, key.region):
            return None
        if domain.is_expired(task, now, self.config.task_ttl):
            return None
        return task

    def task_model(self, key: ApiKey, task_id: str) -> str | None:
        """The model of the caller's task (for scenario matching), without polling it."""
        task = self._owned(key, task_id, self.clock.now())
        return task.model if task else None

    def poll_task(self, key: ApiKey, task_id: str) -> Task | None:
        now = self.clock.now()
        task = self._owned(key, task_id, now)
        if task is None:
            return None
        observed = domain.observe(task, now, poll=True)
        if observed != task:
            self.store.update(observed)
        return observed

    def cancel_task(self, key: ApiKey, task_id: str) -> Task:
        now = self.clock.now()
        task = self._owned(key, task_id, now)
        if task is None:
            raise DashScopeError.from_catalog(self.catalog, "unsupported_operation")
        try:
            canceled = domain.cancel(task, now)
        except domain.NotCancelable:
            raise DashScopeError.from_catalog(self.catalog, "unsupported_operation") from None
        self.store.update(canceled)
        model = self.catalog.model(task.model)
        if model is not None:
            self.ledger.refund(key.account, key.region, model.name, task.succeeded_if_finished, model.price_per_image.get(key.region))
        return canceled

    def throttle_task_api(self, key: ApiKey) -> None:
        """The task API's own limit: so many queries per second per account [async]."""
        per_second = self.config.rate_limits.get("task_api_per_second")
        if self.config.rate_limits.get("enabled", True) and per_second and not self.limiter.allow(
                ("task-api", key.account), per_second, "second", self.clock.now()):
            raise DashScopeError.from_catalog(self.catalog, "rate_quota")

    def list_tasks(self, key: ApiKey, filters: ListFilters, page_no: int, page_size: int) -> tuple[list[Task], int]:
        """One page of the caller's tasks, newest first, and how many match: from the store's
        indexes, so the cost is that of the page, whatever the number of stored tasks."""
        now = self.clock.now()
        self.store.expire(now, REQUEST_SWEEP)
        if filters.region is not None and filters.region != key.region:
            return [], 0  # a key sees its own region's tasks only
        if filters.status is not None:
            self._catch_up(now)
        query = TaskQuery(key.account, key.region, model=filters.model_name, api_key_id=filters.api_key_id,
                          status=filters.status, submitted_from=max(filters.start_time, self._alive_from(now)),
                          submitted_to=filters.end_time)
        page, total = self.store.query(query, (page_no - 1) * page_size, page_size)
        return [domain.observe(t, now) for t in page], total

    @staticmethod
    def total_pages(total: int, page_size: int) -> int:
        return math.ceil(total / page_size)

    # --- results ----------------------------------------------------------------------------

    def result_url(self, base_url: str, image_id: str, expires: float) -> str:
        object_path = f"{RESULT_PREFIX}{image_id}.png"
        path = _RESULT_PATH_CONVERTER.sub("}", self.catalog.endpoints["download"].path)  # the route, without :path
        path = path.format(bucket=images.RESULT_BUCKET, object_path=object_path)
        return f"{base_url}{path}?{self.signer.query(object_path, int(expires))}"

    def result_png(self, object_path: str, query: dict[str, str]) -> bytes | tuple[int, str, str]:
        """The PNG, or (status, OSS code, message) when the URL is not good (now)."""
        now = self.clock.now()
        problem = self.signer.check(object_path, query.get("Expires"), query.get("OSSAccessKeyId"),
                                    query.get("Signature"), now)
        if problem:
            return (403, *problem)
        image_id = object_path.removeprefix(RESULT_PREFIX).removesuffix(".png")
        record = self.store.get_image(image_id) if object_path.startswith(RESULT_PREFIX) else None
        if record is None or record.expires <= now:
            return (404, "NoSuchKey", "The specified key does not exist.")
        return images.render_png(record.prompt, record.seed, record.index, record.width, record.height)

    # --- uploads ----------------------------------------------------------------------------

    def upload_policy(self, key: ApiKey, model: str | None, base_url: str) -> dict[str, Any]:
        if not model:
            raise invalid_parameter(self.catalog, "model", "is required")
        if self.catalog.model(model) is None:
            raise DashScopeError.from_catalog(self.catalog, "model_not_exist")
        return self.uploader.policy(key.account, key.region, self.clock.now(), base_url, self.new_id())

    def accept_upload(self, fields: dict[str, str], data: bytes, content_type: str) -> str:
        """Store an uploaded file; its oss:// key, or UploadRejected with the OSS error."""
        now = self.clock.now()
        self.store.expire(now, REQUEST_SWEEP)
        grant = self.uploader.check(fields, len(data), now)
        if self.store.uploaded_bytes(grant.directory) + len(data) > grant.limit:
            # One policy buys one file's worth of storage, however many files it is used for.
            raise UploadRejected(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        record = UploadRecord(grant.key, data, content_type, grant.account, grant.region, now + UPLOAD_TTL_SECONDS,
                              grant.directory)
        if not self.store.put_upload(record):
            raise UploadRejected(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")
        return "oss://" + grant.key

    # --- scenarios and usage ---------------------------------------------------------------

    def load_scenarios(self, entries: list[Any] | None) -> None:
        for entry in entries or []:
            self.scenarios.add(entry)

    def scenario_for(self, facts: dict[str, Any], chosen: str | None) -> Scenario | None:
        return self.scenarios.take(facts, chosen)

    def usage(self) -> list[dict[str, Any]]:
        quotas = {(k.account, k.region, m.name): m.free_quota_images.get(k.region)
                  for k in self.keys.all() for m in self.catalog.models.values()}
        return self.ledger.report(quotas)

    # --- control ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty the store, scenarios (then reload those of the config), limits and usage; real time."""
        self.store.clear()
        self.scenarios.clear()
        self.load_scenarios(self.config.scenarios)
        self.limiter.clear()
        self.ledger.clear()
        if isinstance(self.clock, ControllableClock):
            self.clock.reset()
