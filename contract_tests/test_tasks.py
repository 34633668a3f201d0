"""The task API over time: unknown ids, cancel only while PENDING, 24-hour expiry, a task list
that conforms, and isolation between accounts and regions."""

from __future__ import annotations

import uuid

import pytest

from .checks import route_evidence
from .client import BudgetExhausted
from .flow import follow, status_of
from .requests import body_for, error_expect, headers_for, oracle

DAY = 24 * 3600


def create_task(contract, model: str = "qwen-image-plus", prompt: str = "a small red boat"):
    """A cheap valid task: the first async model of the profile the target's region serves; its
    id and what the docs say of it."""
    catalog = contract.catalog
    candidates = [m for m in ([model] + sorted(catalog.models)) if catalog.model(m) and contract.target.region in catalog.model(m).regions
                  and catalog.model(m).is_async]
    if not candidates:
        pytest.skip("no asynchronous model in this profile and region")
    found = catalog.model(candidates[0])
    endpoint = next(e for e in found.endpoints if catalog.endpoints[e].is_async)
    from .cases import _images_for

    body = body_for(endpoint, found.name, prompt, _images_for(found), {"n": found.n.min})
    headers = headers_for(catalog, endpoint)
    expect = oracle(catalog, endpoint, body, headers, contract.target.region)
    try:
        created = contract.client.generate(endpoint, body, headers=headers, spend=expect.images or 0)
    except BudgetExhausted as exhausted:
        pytest.skip(f"budget: {exhausted}")
    contract.verify(created, "valid_request_accepted", "request_id_headers", "content_type_as_observed", expect=expect)
    return created.json["output"]["task_id"], expect


def test_unknown_task_id_is_unknown(contract):
    task_id = str(uuid.uuid4())
    answer = contract.client.get_task(task_id)
    contract.verify(answer, "unknown_task_is_unknown", "content_type_as_observed", task_id=task_id)


def test_cancel_works_only_while_pending(contract):
    task_id, _ = create_task(contract)
    before = contract.client.get_task(task_id)
    contract.verify(before, "usage_agrees_with_results")
    cancelled = contract.client.cancel_task(task_id)
    contract.verify(cancelled, "cancel_only_pending", "content_type_as_observed", status_before_cancel=status_of(before))
    if cancelled.status == 200:
        after = contract.client.get_task(task_id)
        contract.verify(after, "status_moves_forward", statuses=[status_of(before), status_of(after)])
        if status_of(after) != "CANCELED":
            contract.reporter.failed("cancel_only_pending", after, "a cancelled task is not CANCELED", field="output.task_status",
                                     expected="CANCELED", actual=status_of(after), test=contract.test_id,
                                     evidence=route_evidence(contract.catalog, "task-query"))
            pytest.fail(f"a cancelled PENDING task shows {status_of(after)}")
    # A task that is no longer PENDING cannot be cancelled.
    task_id, _ = create_task(contract)
    polls = follow(contract.client, task_id, limit=contract.settings.real_time_limit)
    final = polls[-1]
    again = contract.client.cancel_task(task_id)
    refused = error_expect(contract.catalog, "unsupported_operation", "(status)", f"cancelling a {status_of(final)} task")
    contract.verify(again, "cancel_only_pending", "error_message_matches", "content_type_as_observed", expect=refused,
                    status_before_cancel=status_of(final))


def test_statuses_move_forward_and_the_end_agrees_with_itself(contract):
    task_id, expect = create_task(contract)
    model = contract.client.last_model
    polls = follow(contract.client, task_id, limit=contract.settings.real_time_limit, model=model)
    statuses = [status_of(p) for p in polls if status_of(p)]
    for poll in polls:
        contract.verify(poll, "usage_agrees_with_results", expect=expect)
    final = polls[-1]
    checks = ["status_moves_forward"] + (["images_download_as_png"] if status_of(final) == "SUCCEEDED" else [])
    contract.verify(final, *checks, expect=expect, statuses=statuses)
    again = contract.client.get_task(task_id, model=model)  # terminal states stick
    contract.verify(again, "status_moves_forward", statuses=statuses + [status_of(again)])


def test_a_task_expires_24_hours_after_submission(contract):
    if contract.target.admin is None:
        pytest.skip("needs the fake's admin clock: the real service would take 24 hours")
    task_id, _ = create_task(contract)
    follow(contract.client, task_id, limit=contract.settings.real_time_limit)
    contract.target.admin.advance(DAY + 1)
    contract.verify(contract.client.get_task(task_id), "expired_task_is_unknown")


def test_task_list_conforms_and_shows_the_new_task(contract):
    task_id, _ = create_task(contract)
    listing = contract.client.list_tasks({"page_no": 1, "page_size": 100})
    contract.verify(listing)
    ids = {d.get("task_id") for d in (listing.json or {}).get("data") or []}
    if task_id not in ids:
        contract.reporter.failed("task_list_shows_own_tasks", listing, "a task just created is not listed", field="data[].task_id",
                                 expected=task_id, actual=sorted(ids)[:5], test=contract.test_id,
                                 evidence=route_evidence(contract.catalog, "task-list"))
        pytest.fail("the task list misses the task just created")
    contract.reporter.passed("task_list_shows_own_tasks")
    follow(contract.client, task_id, limit=contract.settings.real_time_limit)  # leave nothing running


def test_another_account_never_sees_the_task(contract):
    other = contract.target.other_account_key
    if other is None:
        pytest.skip("no key of another account (set DASHSCOPE_CONTRACT_OTHER_ACCOUNT_KEY)")
    task_id, _ = create_task(contract)
    contract.verify(contract.client.get_task(task_id, key=other), "other_account_cannot_see")
    contract.verify(contract.client.list_tasks({"page_no": 1, "page_size": 100}, key=other), "other_account_cannot_see",
                    foreign_ids=[task_id])
    unknown = contract.client.cancel_task(str(uuid.uuid4()), key=other)
    foreign = contract.client.cancel_task(task_id, key=other)
    if (foreign.status, foreign.code) != (unknown.status, unknown.code):
        contract.reporter.failed("other_account_cannot_see", foreign, "cancelling another account's task differs from an unknown id",
                                 field="(status)", expected=f"{unknown.status} {unknown.code}",
                                 actual=f"{foreign.status} {foreign.code}", test=contract.test_id,
                                 evidence="docs: API_NOTES.md [async] (tasks belong to the account)")
        pytest.fail("another account's cancel answers differently from an unknown id's")
    follow(contract.client, task_id, limit=contract.settings.real_time_limit)  # leave nothing running


def test_a_key_of_another_region_is_refused(contract):
    if contract.target.other_region is None:
        pytest.skip("no key of another region (set DASHSCOPE_CONTRACT_OTHER_REGION_KEY)")
    _, key = contract.target.other_region
    contract.verify(contract.client.get_task(str(uuid.uuid4()), key=key), "wrong_region_key_rejected")
