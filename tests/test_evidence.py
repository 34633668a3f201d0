"""The evidence layer: observations.json (what the real service was observed to do) is valid data,
cited by the schemas, the catalog and the error table, followed where it is sure, and named by the
contract suite's findings."""

from __future__ import annotations

import copy
import json

import dashscope_schemas as ds
import pytest
from dashscope_schemas import evidence
from dashscope_schemas._loader import read_json, schema_names
from helpers import FIXTURES
from jsonschema import Draft202012Validator

from contract_tests.cassette import load, recheck
from contract_tests.report import markdown

CATALOG = ds.load_catalog()
OBSERVATIONS = evidence.observations()


def _cited_in_schemas() -> set[str]:
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            found.update(evidence.evidence_in(node))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in schema_names():
        walk(read_json(f"{name}.schema.json"))
    return found


def _citations() -> dict[str, set[str]]:
    return {
        "schemas": _cited_in_schemas(),
        "catalog": {i for e in CATALOG.endpoints.values() for i in e.evidence} | {i for m in CATALOG.models.values() for i in m.evidence},
        "errors": {i for entry in CATALOG.errors.values() for i in evidence.evidence_in(entry)},
    }


def test_observations_are_valid_and_a_broken_row_is_refused():
    assert len(OBSERVATIONS) >= 25
    schema = read_json("observations.schema.json")
    data = copy.deepcopy(read_json("observations.json"))
    assert list(Draft202012Validator(schema).iter_errors(data)) == []
    broken = copy.deepcopy(data)
    row = broken["observations"]["task-list-epoch-ms"]
    del row["sources"][0]["date"]
    row["confidence"] = "certain"
    assert len(list(Draft202012Validator(schema).iter_errors(broken))) == 2
    medium_without_why = copy.deepcopy(data)
    del medium_without_why["observations"]["missing-input"]["why"]
    assert list(Draft202012Validator(schema).iter_errors(medium_without_why))


def test_every_citation_names_an_observation_and_every_followed_one_is_cited():
    cited = _citations()
    everywhere = set().union(*cited.values())
    assert everywhere <= set(OBSERVATIONS), everywhere - set(OBSERVATIONS)
    followed = {key for key, o in OBSERVATIONS.items() if o.decision == "followed"}
    assert followed <= everywhere, followed - everywhere
    # Each kind of source cites some: the schemas, the catalog and the error table.
    assert all(cited.values()), cited


def test_sure_observations_are_followed_unless_they_are_not_the_services_behaviour():
    for key, o in OBSERVATIONS.items():
        if o.confidence == "high" and o.decision == "not-followed":
            assert o.why and all(s.kind == "sdk" or s.kind == "recording" for s in o.sources), key
            assert "SDK" in o.summary, key  # only an SDK quirk may be left alone
        assert o.endpoints and set(o.endpoints) <= set(CATALOG.endpoints), (key, o.endpoints)
        for source in o.sources:
            assert source.ref and source.date[:2] == "20", (key, source)


def test_error_entries_that_follow_an_observation_keep_the_pages_text():
    for key, entry in CATALOG.errors.items():
        if "docs_message" in entry:
            assert entry["docs_message"] != entry["message"] and evidence.evidence_in(entry), key
    assert CATALOG.error("unsupported_operation")["docs_message"] == "The operation is unsupported on the referee object."


def test_a_schema_failure_names_the_observation_it_breaks():
    listing = next(e for e in load(FIXTURES / "real") if e.notes["name"] == "task-list")
    body = copy.deepcopy(listing.response_body)
    body["data"][0]["gmt_create"] = "2024-03-01 10:00:00.000"  # what the kit used to send
    [issue] = ds.validate(body, "task-list.response")
    assert issue.evidence == ("task-list-epoch-ms",)
    listing.response_body = body
    [finding] = recheck([listing], "current").findings.values()
    assert finding.evidence.startswith("observation task-list-epoch-ms (high; recording: cnblogs/dashscope-sdk")
    assert "expectation from: observation task-list-epoch-ms" in markdown(
        {"meta": {"drift": True}, "checks": {}, "violations": [finding.to_dict()]})


def test_a_finding_from_the_pages_says_docs():
    answer = next(e for e in load(FIXTURES / "real") if e.notes["name"] == "multimodal-generation-qwen-image-max")
    broken = copy.deepcopy(answer)
    del broken.response_body["usage"]
    findings = recheck([broken], "current").findings.values()
    [finding] = [f for f in findings if f.check == "response_schema_conformance"]
    assert finding.evidence.startswith("docs: qwen-image-edit_api-reference"), finding.evidence


@pytest.mark.parametrize("model, expected", [
    ("wan2.5-i2i-preview", "observation url-error-message"),   # the service's current text
    ("qwen-image-max", "observation async-header-on-sync"),   # a sync-only model asked for a task
])
def test_a_refusal_names_where_its_expectation_comes_from(model, expected):
    created = next(e for e in load(FIXTURES / "real") if e.notes["name"] == "text2image-created")
    wrong = copy.deepcopy(created)
    wrong.request_body = {"model": model, "input": {"prompt": "a cat"}}
    wrong.model = model  # the service answered 200: a finding, since the docs say it must refuse
    [finding] = recheck([wrong], "current").findings.values()
    assert finding.check == "invalid_request_rejected" and finding.evidence.startswith(expected), finding.evidence


def test_observed_texts_are_the_fakes():
    """The texts the observations quote are the error table's, so the fake answers with them."""
    for key, quoted in {"cancel-not-pending": "unsupported_operation", "url-error-message": "url_error",
                        "missing-input": "empty_input", "body-not-json": "body_invalid"}.items():
        assert CATALOG.error(quoted)["message"].rstrip(".") in OBSERVATIONS[key].observed.replace('\\"', '"'), key
    assert json.dumps(CATALOG.error("async_not_supported")["message"])[1:-1] in OBSERVATIONS["async-header-on-sync"].summary
