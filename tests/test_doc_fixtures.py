"""Every JSON example of the official pages is a fixture, and what is wire format validates."""

from __future__ import annotations

import dashscope_schemas as ds
import pytest

from tools import doc_examples

FIXTURES = doc_examples.load_fixtures()
PAGE_PROFILE = {"qwen-image-edit-plus_api-reference_2025-12-13_ja.txt": "2025-12"}


def _issues(fixture, profile="current"):
    issues = ds.validate(fixture["wire"], fixture["schema"], profile)
    if fixture.get("projection"):
        # The Java SDK drops fields it has no member for: check the fields it kept, not presence.
        issues = [i for i in issues if i.keyword != "required"]
    return issues


def test_the_pages_examples_are_all_here():
    pages = {f["source"]["page"] for f in FIXTURES}
    assert len(pages) == 5
    kinds = {}
    for f in FIXTURES:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    # Every edit page has two curl bodies and two HTTP responses (success, error).
    assert kinds["curl-request"] == 6 and kinds["http-response"] == 6
    assert len(FIXTURES) == sum(kinds.values()) >= 45


def test_extraction_of_the_pages_gives_exactly_the_committed_fixtures(shared_dir):
    fresh = doc_examples.extract(shared_dir / "docs")
    assert [f["name"] for f in fresh] == [f["name"] for f in FIXTURES]
    assert fresh == FIXTURES, "fixtures/docs is stale: run python -m tools.doc_examples"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f["name"])
def test_fixture_validates_against_its_schema(fixture):
    profile = PAGE_PROFILE.get(fixture["source"]["page"], "current")
    assert _issues(fixture, profile) == []


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f["name"])
def test_sdk_prints_are_marked_and_their_wire_part_is_what_the_sdk_did_not_add(fixture):
    if fixture["kind"] == "python-sdk-print":
        assert fixture["wire_format"] is False
        assert "status_code" in fixture["example"] and "status_code" not in fixture["wire"]
        assert "status_code" in fixture["sdk_added"]
    elif fixture["kind"] == "java-sdk-print":
        assert fixture["wire_format"] is False and fixture["projection"] is True
        assert "requestId" not in fixture["wire"]
    else:
        assert fixture["wire_format"] is True and fixture["wire"] == fixture["example"]


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if f["kind"] == "curl-request"], ids=lambda f: f["name"])
def test_curl_bodies_pass_the_catalog_rules_of_their_page(fixture):
    profile = PAGE_PROFILE.get(fixture["source"]["page"], "current")
    verdict = ds.load_catalog(profile).check_request("multimodal-generation", fixture["wire"], {})
    assert verdict.ok, verdict.violations


def test_a_broken_wire_example_would_be_caught():
    """The checks above can fail: the same fixtures with one field broken do not validate."""
    for fixture in FIXTURES:
        if fixture["kind"] == "http-response" and fixture["schema"] == "multimodal-generation.response":
            broken = ds.merge_patch(fixture["wire"], {"usage": {"image_count": "2"}})
            assert ds.validate(broken, fixture["schema"])
        if fixture["kind"] == "python-sdk-print" and fixture["schema"] == "task-query.response":
            assert ds.validate(fixture["example"] | {"output": {"task_status": "DONE"}}, fixture["schema"])
