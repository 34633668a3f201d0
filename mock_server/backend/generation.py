"""Generation: checking a request against the catalog, admitting it (rate limits, free tier), and
making its images, at once (the synchronous endpoint) or as a task (the asynchronous ones)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dashscope_schemas import GenerationRequest, InputImage, output_size

from .. import effects, images
from ..accounts import ApiKey
from ..domain import tasks as domain
from ..domain.tasks import Task
from ..errors import DashScopeError, invalid_parameter
from ..ids import new_seed
from ..scenarios import Scenario
from ..store import ImageRecord
from .calls import Call, Outcome, caller, json_of, scenario_of
from .tasks import REQUEST_SWEEP

if TYPE_CHECKING:
    from ..service import FakeDashScope

def _actual_prompt(request: GenerationRequest) -> str:
    """The prompt the model used: truncated to the limit, and 'rewritten' when prompt_extend is on."""
    return domain.actual_prompt(request.prompt, request.prompt_extend)


# Image sides are a few hundred values, kept by every task and image record: one int object each
# (past 256, every computed int is a new 28-byte object).
_SIDES: dict[int, int] = {}


def _side(value: int) -> int:
    return _SIDES.setdefault(value, value) if len(_SIDES) < 65536 else value


@dataclass(frozen=True)
class SyncResult:
    image_ids: tuple[str, ...]
    width: int
    height: int
    incremental: bool = False  # parameters.incremental_output: a stream sends each image once
    requested: int = 0         # images asked for (task_metric TOTAL); the made ones are image_ids


class GenerationBackend:
    """The generation verbs of one FakeDashScope."""

    def __init__(self, service: FakeDashScope):
        self.service = service

    def submit(self, endpoint: str, call: Call) -> Outcome[SyncResult | Task]:
        """One call of a generation endpoint, in the service's order: who calls, what was sent,
        limits, the scenario's request-level effect, then the images (at once, or as a task)."""
        key = caller(self.service, call)
        body = json_of(self.service, call)
        request = self.check(endpoint, body, call.headers, call.region)
        # Limits first: a throttled request must not use up a one-shot scenario meant for a real one.
        self.admit(key, request)
        scenario, interruption = scenario_of(self.service, call, endpoint, key, model=request.model.name, prompt=request.orig_prompt)
        if interruption is not None and interruption.stops:
            return Outcome(interruption=interruption)
        resolve_oss = call.enabled("x-dashscope-ossresourceresolve")
        if self.service.catalog.endpoints[endpoint].is_async:
            task = self.create_task(key, request, resolve_oss=resolve_oss, scenario=scenario, request_id=call.request_id)
            return Outcome(task, interruption)
        try:
            result = self.generate_sync(key, request, resolve_oss=resolve_oss, scenario=scenario)
        except DashScopeError as error:
            if scenario is not None and effects.fails_in_stream(scenario.effect):
                return Outcome(interruption=interruption, failure=error)  # a stream carries it as event:error
            raise
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        return Outcome(replace(result, incremental=parameters.get("incremental_output") is True), interruption)

    def check(self, endpoint: str, body: Any, headers: Mapping[str, str], region: str) -> GenerationRequest:
        verdict = self.service.catalog.check_request(endpoint, body, headers, region)
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
        upload = self.service.store.get_upload(image.ref.removeprefix("oss://")) if resolve_oss else None
        if upload is None or upload.expires <= self.service.clock.now() or (upload.account, upload.region) != (key.account, key.region):
            # Without X-DashScope-OssResourceResolve the service tries to download oss:// as a URL.
            raise DashScopeError.from_catalog(self.service.catalog, "data_inspection_download")
        return upload.data

    def _last_input_size(self, key: ApiKey, request: GenerationRequest, resolve_oss: bool) -> tuple[int, int] | None:
        """Dimensions of the last input image: read from its bytes (data URI or upload), or
        announced by a URL's file name (W-H, WxH); the fake downloads nothing. None: unknown (1:1)."""
        if not request.images:
            return None
        size = None
        allowed = {f.replace("jpg", "jpeg") for f in request.model.input_images.formats}
        for index, image in enumerate(request.images):
            data = self._input_bytes(key, image, resolve_oss)
            if data is None:
                size = images.size_from_url(image.ref)
                continue
            try:
                fmt, width, height = images.read_image(data)
            except images.InvalidImage:
                raise invalid_parameter(self.service.catalog, f"input image {index + 1}", "not a readable image") from None
            if fmt.replace("mpo", "jpeg") not in allowed:
                raise invalid_parameter(self.service.catalog, f"input image {index + 1}",
                                        f"{fmt} images are not accepted; use {', '.join(request.model.input_images.formats)}")
            size = (width, height)
        return size

    def _plan(self, key: ApiKey, request: GenerationRequest, now: float, resolve_oss: bool,
              actual: str) -> tuple[int, int, int, list[str]]:
        width, height = map(_side, output_size(request.model.size_rule, request.size, self._last_input_size(key, request, resolve_oss)))
        seed = request.seed if request.seed is not None else new_seed()
        # Result images live until the last moment a URL to them can still be valid.
        config = self.service.config
        lifetime = max(config.task_ttl + config.url_ttl, config.sync_url_ttl)
        image_ids = []
        for index in range(request.n):
            image_id = self.service.new_id()
            self.service.store.put_image(ImageRecord(image_id, actual, seed, index, width, height, now + lifetime))
            image_ids.append(image_id)
        return width, height, seed, image_ids

    def admit(self, key: ApiKey, request: GenerationRequest) -> None:
        """Rate limits and the free-tier-only mode, before anything is generated."""
        now, model = self.service.clock.now(), request.model
        limits, limiter = model.rate_limit, self.service.limiter
        if self.service.config.rate_limits.get("enabled", True):
            if limits.requests and not limiter.allow((key.account, key.region, model.name), limits.requests, limits.per or "second", now):
                raise DashScopeError.from_catalog(self.service.catalog, "rate_quota")
            if self.service.catalog.endpoints[request.endpoint].is_async and limits.concurrent_tasks:
                active = self.service.tasks.active_count(key, model.name, now)
                if not self.service.limiter.concurrency_allows(active, limits.concurrent_tasks):
                    raise DashScopeError.from_catalog(self.service.catalog, "rate_quota")
        if self.service.ledger.refuses(key.account, key.region, model.name, model.free_quota_images.get(key.region)):
            raise DashScopeError.from_catalog(self.service.catalog, "free_tier_only")

    def generate_sync(self, key: ApiKey, request: GenerationRequest, *, resolve_oss: bool = False,
                      scenario: Scenario | None = None) -> SyncResult:
        width, height, _, image_ids = self._plan(key, request, self.service.clock.now(), resolve_oss, _actual_prompt(request))
        effect = scenario.effect if scenario else {}
        outcomes, failure = effects.outcomes(self.service.catalog, effect, image_ids)
        if failure is not None or not any(o.ok for o in outcomes):
            raise effects.failure_error(self.service.catalog, effect)
        made = tuple(o.image_id for o in outcomes if o.ok and o.image_id)
        self.service.charge(key, request.model, len(made))
        return SyncResult(made, width, height, requested=len(outcomes))

    def create_task(self, key: ApiKey, request: GenerationRequest, *, resolve_oss: bool = False,
                    scenario: Scenario | None = None, request_id: str = "") -> Task:
        now = self.service.clock.now()
        self.service.store.expire(now, REQUEST_SWEEP)
        width, height, seed, image_ids = self._plan(key, request, now, resolve_oss, _actual_prompt(request))
        effect = scenario.effect if scenario else {}
        outcomes, failure = effects.outcomes(self.service.catalog, effect, image_ids)
        timing = effects.timing(effect, self.service.config.timing_for(request.model.name))
        # The task keeps what the service keeps of the prompt: the text truncated at the model's
        # limit, not a 45 MiB body's worth for 24 hours. Built submitted now, so that
        # domain.create has nothing to change.
        task = domain.create(Task(
            task_id=self.service.new_id(), account=key.account, region=key.region, api_key_id=key.key_id,
            model=request.model.name, endpoint=request.endpoint, orig_prompt=request.prompt,
            prompt_extend=request.prompt_extend, seed=seed, width=width, height=height, timing=timing,
            outcomes=outcomes, failure=failure, submit_time=now, request_id=request_id,
        ), now)
        self.service.store.create(task)
        # Booked when accepted (the outcome is fixed then); a cancel gives it back.
        self.service.charge(key, request.model, task.succeeded_if_finished)
        return task
