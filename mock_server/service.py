"""The fake DashScope backend: API verbs over the catalog, the store, the clock and the keys.

No HTTP here (moto's models.py): the api/ modules parse requests, call these verbs and render
what they return; failures are DashScopeError values carrying their wire status and code.
"""

from __future__ import annotations

import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from dashscope_schemas import Catalog, GenerationRequest, load_catalog, output_size

from . import images
from .accounts import ApiKey, KeyRing, load_keys
from .clock import Clock, ControllableClock
from .config import Config
from .domain import tasks as domain
from .domain.tasks import ImageOutcome, Task
from .errors import DashScopeError, invalid_parameter
from .store import ImageRecord, MemoryStore, Store

# Task and result times are printed in the service's local time, China Standard Time, as in
# every example of the pages (no zone is written).
SERVICE_TZ = timezone(timedelta(hours=8))
RESULT_PREFIX = "results/"
_EXTEND_SUFFIX = ". Rendered with rich detail, balanced composition and natural light."


def _actual_prompt(request: GenerationRequest) -> str:
    """The prompt the model used: truncated to the limit, and 'rewritten' when prompt_extend is on."""
    return request.prompt.rstrip(". ") + _EXTEND_SUFFIX if request.prompt_extend else request.prompt


def format_time(epoch: float) -> str:
    """YYYY-MM-DD HH:mm:ss.SSS"""
    return datetime.fromtimestamp(epoch, SERVICE_TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def parse_list_time(text: str) -> float:
    """The task list's YYYYMMDDhhmmss, in service time."""
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SERVICE_TZ).timestamp()


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
        self.new_id = new_id
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

    def _last_input_size(self, request: GenerationRequest) -> tuple[int, int] | None:
        """Dimensions of the last input image: decoded from a data URI, or announced by a URL's
        file name (W-H, WxH); the fake does not download URLs. None when unknown (aspect 1:1)."""
        size = None
        for index, image in enumerate(request.images):
            if image.data is not None:
                try:
                    fmt, width, height = images.read_image(image.data)
                except images.InvalidImage:
                    raise invalid_parameter(self.catalog, f"{request.model.name} input image {index + 1}",
                                            "the data URI does not hold a readable image") from None
                allowed = {f.replace("jpg", "jpeg") for f in request.model.input_images["formats"]}
                if fmt.replace("mpo", "jpeg") not in allowed:
                    raise invalid_parameter(self.catalog, f"input image {index + 1}",
                                            f"{fmt} images are not accepted; use {', '.join(request.model.input_images['formats'])}")
                size = (width, height)
            else:
                size = images.size_from_url(image.ref)
        return size

    def _plan(self, request: GenerationRequest, now: float) -> tuple[int, int, int, tuple[ImageOutcome, ...]]:
        width, height = output_size(request.model.size_rule, request.size, self._last_input_size(request))
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        actual = _actual_prompt(request)
        outcomes = []
        # Result images live until the last moment a URL to them can still be valid.
        lifetime = self.config.task_ttl + self.config.url_ttl
        for index in range(int(request.n)):
            image_id = self.new_id()
            self.store.put_image(ImageRecord(image_id, actual, seed, index, width, height, now + lifetime))
            outcomes.append(ImageOutcome(image_id))
        return width, height, seed, tuple(outcomes)

    def generate_sync(self, request: GenerationRequest) -> SyncResult:
        width, height, _, outcomes = self._plan(request, self.clock.now())
        return SyncResult(tuple(o.image_id for o in outcomes if o.image_id), width, height)

    def create_task(self, key: ApiKey, request: GenerationRequest) -> Task:
        now = self.clock.now()
        self.store.expire(now)
        width, height, seed, outcomes = self._plan(request, now)
        task = domain.create(Task(
            task_id=self.new_id(), account=key.account, region=key.region, api_key_id=key.key_id,
            model=request.model.name, endpoint=request.endpoint, orig_prompt=request.orig_prompt,
            actual_prompt=_actual_prompt(request), seed=seed,
            width=width, height=height, timing=self.config.timing_for(request.model.name), outcomes=outcomes,
        ), now)
        self.store.create(task)
        return task

    # --- tasks ------------------------------------------------------------------------------

    def _owned(self, key: ApiKey, task_id: str, now: float) -> Task | None:
        """The caller's task, or None: unknown, expired and other accounts' ids look the same."""
        self.store.expire(now)
        task = self.store.get(task_id)
        if task is None or (task.account, task.region) != (key.account, key.region):
            return None
        if domain.is_expired(task, now, self.config.task_ttl):
            return None
        return task

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
        return canceled

    def list_tasks(self, key: ApiKey, filters: dict[str, Any], page_no: int, page_size: int) -> tuple[list[Task], int]:
        now = self.clock.now()
        self.store.expire(now)

        def keep(task: Task) -> bool:
            if domain.is_expired(task, now, self.config.task_ttl):
                return False
            observed = domain.observe(task, now)
            checks = {
                "model_name": lambda v: task.model == v,
                "api_key_id": lambda v: task.api_key_id == v,
                "region": lambda v: task.region == v,
                "status": lambda v: observed.status == v,
                "start_time": lambda v: task.submit_time >= v,
                "end_time": lambda v: task.submit_time <= v,
            }
            return all(checks[name](value) for name, value in filters.items())

        matching = [domain.observe(t, now) for t in self.store.list(key.account, key.region, keep)]
        start = (page_no - 1) * page_size
        return matching[start : start + page_size], len(matching)

    @staticmethod
    def total_pages(total: int, page_size: int) -> int:
        return math.ceil(total / page_size)

    # --- results ----------------------------------------------------------------------------

    def result_url(self, base_url: str, image_id: str, expires: float) -> str:
        object_path = f"{RESULT_PREFIX}{image_id}.png"
        return f"{base_url}/__oss/{images.RESULT_BUCKET}/{object_path}?{self.signer.query(object_path, int(expires))}"

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

    # --- control ----------------------------------------------------------------------------

    def reset(self) -> None:
        self.store.clear()
        if isinstance(self.clock, ControllableClock):
            self.clock.reset()
