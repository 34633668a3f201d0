"""Every model and endpoint at the edges of each catalog rule: valid requests accepted (and
their images as the rules say), broken ones refused with the documented status and code."""

from __future__ import annotations

import pytest

from .cases import catalog_cases
from .client import BudgetExhausted
from .flow import follow, status_of
from .settings import Settings

_SETTINGS = Settings.from_env()


def _cases():
    import dashscope_schemas as ds

    catalog = ds.load_catalog(_SETTINGS.profile)
    models = list(_SETTINGS.models) or sorted(catalog.models)
    return catalog_cases(catalog, models, _SETTINGS.case_region(catalog), cheap=_SETTINGS.points_at_real_service,
                         has_other_region_key=True)


CASES = _cases()


def _key(contract, kind: str):
    if kind == "default":
        return "default"
    if kind == "none":
        return None
    if kind == "invalid":
        return "sk-contract-not-a-key-000000"
    if contract.target.other_region is None:
        pytest.skip("no key of another region (set DASHSCOPE_CONTRACT_OTHER_REGION_KEY)")
    return contract.target.other_region[1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalog_case(contract, case):
    endpoint = contract.catalog.endpoints.get(case.endpoint)
    if endpoint is None:
        pytest.skip(f"{case.endpoint} is not an endpoint of this profile")
    try:
        answer = contract.client.generate(case.endpoint, case.body, headers=case.headers, key=_key(contract, case.key),
                                          spend=case.spend)
    except BudgetExhausted as exhausted:
        pytest.skip(f"budget: {exhausted}")
    checks = ["valid_request_accepted", "invalid_request_rejected", "usage_agrees_with_results"]
    if endpoint.is_sync_generation:
        checks += ["image_size_obeys_rules", "images_download_as_png"]
    if "prompt_limit" in case.facts:
        checks.append("long_prompt_truncated")
    contract.verify(answer, *checks, expect=case.expect, **case.facts)
    if case.expect.accepted and endpoint.is_async:
        polls = follow(contract.client, answer.json["output"]["task_id"], limit=contract.settings.real_time_limit, model=case.model)
        final = polls[-1]
        statuses = [status_of(p) for p in polls if status_of(p)]
        task_checks = ["status_moves_forward", "usage_agrees_with_results"]
        if status_of(final) == "SUCCEEDED":
            task_checks += ["images_download_as_png"]
        if "prompt_limit" in case.facts:
            task_checks.append("long_prompt_truncated")
        contract.verify(final, *task_checks, expect=case.expect, statuses=statuses, **case.facts)
