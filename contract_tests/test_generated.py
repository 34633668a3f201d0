"""Generated requests: valid ones are accepted with the images the rules give, and ones that
break exactly one rule are refused with the documented status and code. Failures shrink to a
minimal request and print the curl command that reproduces it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from .client import BudgetExhausted
from .requests import oracle
from .strategies import invalid_request, valid_request

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def _models(contract) -> tuple[str, ...]:
    return tuple(contract.settings.models) or tuple(sorted(contract.catalog.models))


def test_generated_valid_requests_are_accepted(contract):
    cheap = contract.target.real

    @settings(max_examples=contract.settings.valid_examples(contract.target.kind), deadline=None, suppress_health_check=HEALTH,
              database=None)
    @given(data=st.data())
    def run(data):
        endpoint, body, headers = data.draw(valid_request(contract.catalog.profile, _models(contract), contract.target.region, cheap))
        expect = oracle(contract.catalog, endpoint, body, headers, contract.target.region)
        assert expect.accepted, f"the strategy made an invalid request: {expect.rule} {expect.why}"
        try:
            answer = contract.client.generate(endpoint, body, headers=headers, spend=expect.images or 0)
        except BudgetExhausted as exhausted:
            pytest.skip(f"budget: {exhausted}")
        note(contract.client.masked(answer.curl()))
        contract.verify(answer, "valid_request_accepted", "usage_agrees_with_results", "image_size_obeys_rules", expect=expect)

    run()


def test_generated_invalid_requests_are_rejected(contract):
    @settings(max_examples=contract.settings.max_examples * 2, deadline=None, suppress_health_check=HEALTH, database=None)
    @given(data=st.data())
    def run(data):
        endpoint, body, headers, mutation = data.draw(invalid_request(contract.catalog.profile, _models(contract), contract.target.region))
        expect = oracle(contract.catalog, endpoint, body, headers, contract.target.region)
        assert not expect.accepted, f"the mutation {mutation} left the request valid"
        answer = contract.client.generate(endpoint, body, headers=headers)
        note(contract.client.masked(answer.curl()))
        contract.verify(answer, "invalid_request_rejected", expect=expect)

    run()
