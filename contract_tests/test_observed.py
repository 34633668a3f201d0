"""What the real service was observed to do (schemas/observations.json), beyond the pages: every
followed or agreed row has a check (observed_checks.OBSERVATION_CHECKS) and a request here that
shows it. Refusals are free and many (cases.observed_refusals, one per error-table entry and
route); valid generations are few and cheap; what needs the fake's admin API (planted moderation,
a burst against a rate limit) is skipped on other targets."""

from __future__ import annotations

import time
from datetime import datetime

import dashscope_schemas as ds
import pytest

from .cases import SSE, Case, _images_for, observed_refusals
from .client import BudgetExhausted
from .flow import follow, status_of
from .observed_checks import SERVICE_TZ, service_time
from .requests import body_for, error_expect, oracle
from .settings import Settings
from .test_tasks import create_task

_SETTINGS = Settings.from_env()
# A model of the platform outside the image catalog (the recording asked for it: upload-policy-any-model).
OTHER_PLATFORM_MODEL = "qwen-vl-plus"
RATE_LIMITED = "qwen-image-max"  # the model whose limit was read off a real answer (rate-limit-qwen-image-max)
TRANSPORT = ("request_id_headers", "content_type_as_observed")


def _refusals() -> list[Case]:
    catalog = ds.load_catalog(_SETTINGS.profile)
    models = list(_SETTINGS.models) or sorted(catalog.models)
    return observed_refusals(catalog, models, _SETTINGS.case_region(catalog), billed=_SETTINGS.points_at_real_service)


REFUSALS = _refusals()


def _key(kind: str):
    return {"default": "default", "none": None, "invalid": "sk-contract-not-a-key-000000"}[kind]


def _send(contract, case: Case, *, retry_throttled: bool = True):
    client = contract.client
    path = case.path or contract.catalog.endpoints[case.endpoint].path.replace("{task_id}", "contract-no-such-task")
    return client.send(case.method, client.target.base_url + path, endpoint=case.endpoint, body=case.body, headers=case.headers,
                       key=_key(case.key), model=case.model, raw_body=case.raw, retry_throttled=retry_throttled)


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_refused_in_the_services_words(contract, case):
    answer = _send(contract, case)
    if case.facts.get("stream"):
        contract.verify(answer, "stream_error_in_stream", "error_message_matches", *TRANSPORT, expect=case.expect, **case.facts)
    else:
        contract.verify(answer, "invalid_request_rejected", "error_message_matches", *TRANSPORT, expect=case.expect, **case.facts)


def _sync_model(contract, n: int = 1):
    """The first model of the run with the synchronous route, and n (at most what it makes)."""
    catalog, region = contract.catalog, contract.target.region
    names = list(contract.settings.models) or sorted(catalog.models)
    found = [m for m in map(catalog.model, names) if m and region in m.regions and "multimodal-generation" in m.endpoints]
    if not found:
        pytest.skip("no model of this run is served by the synchronous route here")
    model = max(found, key=lambda m: min(m.n.max, n))  # prefer one that can make n images
    return model, min(model.n.max, n), _images_for(model)


def _now(contract) -> float | None:
    return contract.target.admin.now() if contract.target.admin is not None else None


def _generate(contract, body, headers, expect):
    try:
        return contract.client.generate("multimodal-generation", body, headers=headers, spend=expect.images or 0)
    except BudgetExhausted as exhausted:
        pytest.skip(f"budget: {exhausted}")


def test_a_synchronous_answer_as_observed(contract):
    """task_metric beside choices, URLs signed for about 7 days, the route's headers."""
    model, n, images = _sync_model(contract)
    body = body_for("multimodal-generation", model.name, "a paper crane on a desk", images, {"n": n})
    expect = oracle(contract.catalog, "multimodal-generation", body, {}, contract.target.region)
    before = _now(contract)
    answer = _generate(contract, body, {}, expect)
    after = _now(contract)
    now = {"now": (before, after)} if before is not None and after is not None else {}
    contract.verify(answer, "valid_request_accepted", "sync_task_metric", "result_url_expiry", *TRANSPORT, expect=expect, **now)


def test_streams_as_observed(contract):
    """An accepted stream, its images each event so far (cumulative) or each once
    (incremental_output): framing, finish_reason and usage; on a billed target, one small stream."""
    model, n, images = _sync_model(contract, n=1 if contract.target.real else 2)
    for incremental in (False,) if contract.target.real else (False, True):
        params = {"n": n, **({"incremental_output": True} if incremental else {})}
        body = body_for("multimodal-generation", model.name, "three lanterns on a pier", images, params)
        expect = oracle(contract.catalog, "multimodal-generation", body, SSE, contract.target.region)
        answer = _generate(contract, body, SSE, expect)
        contract.verify(answer, "valid_request_accepted", "stream_framing", *TRANSPORT, expect=expect, incremental=incremental)


def _submitted(poll) -> float | None:
    return service_time(((poll.json or {}).get("output") or {}).get("submit_time")) if isinstance(poll.json, dict) else None


def test_a_task_lives_as_observed(contract):
    """Created, RUNNING with task_metrics, times as the service prints them, URLs that expire a
    day after end_time, and a late cancel refused in the service's words."""
    task_id, expect = create_task(contract)
    polls = follow(contract.client, task_id, limit=contract.settings.real_time_limit, model=contract.client.last_model)
    for poll in polls:
        contract.verify(poll, "running_task_as_observed", "task_times_as_observed", *TRANSPORT, expect=expect)
    contract.verify(polls[-1], "result_url_expiry", expect=expect)
    cancel = contract.client.cancel_task(task_id)
    refused = error_expect(contract.catalog, "unsupported_operation", "(status)", f"cancelling a {status_of(polls[-1])} task")
    contract.verify(cancel, "cancel_only_pending", "error_message_matches", *TRANSPORT, expect=refused,
                    status_before_cancel=status_of(polls[-1]))


def _list_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, SERVICE_TZ).strftime("%Y%m%d%H%M%S")


def test_the_task_list_as_observed(contract):
    """Paging (page_no, page_size, total, total_page), items with epoch-millisecond times and the
    caller's ids, and the filters by model, status and creation time."""
    count = 1 if contract.target.real else 2
    created = [create_task(contract) for _ in range(count)]
    model = contract.client.last_model
    tasks, finals = {}, {}
    for task_id, _ in created:
        polls = follow(contract.client, task_id, limit=contract.settings.real_time_limit, model=model)
        tasks[task_id] = {"model": model, "submitted": _submitted(polls[0])}
        finals[task_id] = status_of(polls[-1])
    ids = list(tasks)

    def listed(params, **facts) -> list[dict]:
        answer = contract.client.list_tasks(params)
        contract.verify(answer, "task_list_paging", "task_list_items_as_observed", *TRANSPORT, params=params, tasks=tasks, **facts)
        data = answer.json.get("data") if isinstance(answer.json, dict) else None
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    everything = listed({"page_no": 1, "page_size": 100}, listed=ids)
    first = [d.get("task_id") for d in listed({"page_no": 1, "page_size": 1})]
    listed({"page_no": 2, "page_size": 1}, unlisted=first)
    listed({"page_no": 1, "page_size": 100, "model_name": model}, listed=ids)
    listed({"page_no": 1, "page_size": 100, "region": contract.target.region}, listed=ids)
    key_id = next((d.get("api_key_id") for d in everything if d.get("task_id") == ids[0]), None)
    if isinstance(key_id, str):
        listed({"page_no": 1, "page_size": 100, "api_key_id": key_id}, listed=ids)
    status = finals[ids[0]]
    if status in ("SUCCEEDED", "FAILED", "CANCELED"):  # an end that stays: the filter's answer cannot change meanwhile
        listed({"page_no": 1, "page_size": 100, "status": status}, listed=[t for t in ids if finals[t] == status])
        listed({"page_no": 1, "page_size": 100, "status": "RUNNING"}, unlisted=ids)
    submitted = tasks[ids[0]]["submitted"]
    if submitted is not None:
        around = {"start_time": _list_time(submitted - 60), "end_time": _list_time(submitted + 60)}
        listed({"page_no": 1, "page_size": 100, **around}, listed=[ids[0]])
        before = {"start_time": _list_time(submitted - 7200), "end_time": _list_time(submitted - 3600)}
        listed({"page_no": 1, "page_size": 100, **before}, unlisted=ids)


def test_upload_policies_as_observed(contract):
    """The policy's fields and limits as the real one's, for an image model and for any other model."""
    client = contract.client
    names = list(contract.settings.models) or sorted(contract.catalog.models)
    for model, checks in ((names[0], ()), (OTHER_PLATFORM_MODEL, ("upload_policy_any_model",))):
        answer = client.send("GET", client.target.base_url + contract.catalog.endpoints["upload-policy"].path, endpoint="upload-policy",
                             params={"action": "getPolicy", "model": model}, model=model)
        contract.verify(answer, "upload_policy_as_observed", *checks, *TRANSPORT)


def _admin(contract):
    if contract.target.admin is None:
        pytest.skip("needs the fake's admin API (a planted situation, or its clock)")
    return contract.target.admin


def test_moderation_says_which_side(contract):
    """Moderation's two texts: a request refused for its input, a task failed for its output
    (planted with the fake's scenarios, matched by a marker in the prompt)."""
    admin = _admin(contract)
    marker = f"contract-moderation-{time.monotonic_ns()}"
    model, n, images = _sync_model(contract)
    planted = [admin.add_scenario({"match": {"endpoint": "multimodal-generation", "prompt_contains": f"{marker}-input"},
                                   "effect": {"type": "reject", "error": "data_inspection_failed"}, "times": 1}),
               *(admin.add_scenario({"match": {"prompt_contains": f"{marker}-{side}"}, "effect": {"type": "output_moderation"},
                                     "times": 1}) for side in ("output", "task"))]
    try:
        for side, error in (("input", "data_inspection_failed"), ("output", "output_inspection_failed")):
            body = body_for("multimodal-generation", model.name, f"a harbour {marker}-{side}", images, {"n": n})
            answer = _generate(contract, body, {}, oracle(contract.catalog, "multimodal-generation", body, {}, contract.target.region))
            refused = error_expect(contract.catalog, error, side, f"the {side} was refused", model=model.name)
            contract.verify(answer, "invalid_request_rejected", "error_message_matches", *TRANSPORT, expect=refused)
        task_id, _ = create_task(contract, prompt=f"a harbour {marker}-task")
        final = follow(contract.client, task_id, limit=contract.settings.real_time_limit, model=contract.client.last_model)[-1]
        failed = error_expect(contract.catalog, "output_inspection_failed", "output", "the output was refused")
        contract.verify(final, "task_fails_as_expected", "error_message_matches", expect=failed)
    finally:
        for scenario in planted:
            admin.remove_scenario(scenario["id"])


def test_the_rate_limit_of_qwen_image_max(contract):
    """count_limit 2 per count_limit_period 60, read off a real answer: at one instant of the
    fake's clock two are accepted and the third refused; a quarter of the period later (half a
    request's share) still refused; another half later, accepted."""
    admin = _admin(contract)
    model = contract.catalog.model(RATE_LIMITED)
    if model is None or contract.target.region not in model.regions or not model.rate_limit.requests:
        pytest.skip(f"{RATE_LIMITED} is not served with a rate limit here")
    limit, period = model.rate_limit.requests, 60.0 if model.rate_limit.per == "minute" else 1.0
    share = period / limit  # the time one request's quota takes to come back
    body = body_for("multimodal-generation", model.name, "a lighthouse", [], {"n": 1})
    case = Case(f"{model.name}/rate", "multimodal-generation", model.name, body, {}, oracle(contract.catalog, "multimodal-generation",
                                                                                          body, {}, contract.target.region))
    throttled = error_expect(contract.catalog, "rate_quota", "(rate limit)", "over the rate", model=model.name)
    admin.advance(period)  # a full bucket, whatever came before
    plan = [("accept", 0.0, f"request {i + 1} of {limit} in a burst") for i in range(limit)]
    plan += [("refuse", 0.0, f"request {limit + 1} in a burst"), ("refuse", share / 2, f"{share / 2:g} s later"),
             ("accept", share, f"{share * 1.5:g} s after the burst")]
    for phase, wait, why in plan:
        if wait:
            admin.advance(wait)
        answer = _send(contract, case, retry_throttled=False)
        contract.verify(answer, "rate_limit_as_documented", "error_message_matches", *TRANSPORT,
                        expect=throttled if answer.status == 429 else case.expect, phase=phase, why=why)
