"""The fast validator (jsonschema-rs) only ever accepts what jsonschema accepts: it decides
nothing on its own, it lets valid documents skip the slow path (schemas/validation.py)."""

from __future__ import annotations

import dashscope_schemas as ds
import pytest
from dashscope_schemas.validation import fast_validator_for, validator_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from test_fuzz_no_500 import _generable, json_values

PROFILES = ("current", "2025-12")
REQUESTS = ("image-synthesis.text2image.request", "image-synthesis.image2image.request", "multimodal-generation.request")


def _agrees(document, name: str, profile: str) -> None:
    fast = fast_validator_for(name, profile).is_valid(document)
    slow = validator_for(name, profile).is_valid(document)
    assert slow or not fast, f"jsonschema-rs accepts what jsonschema refuses under {name} ({profile}): {document!r}"
    assert (ds.validate(document, name, profile) == []) == slow


def _with_member(document, path_and_value):
    """The document with one member (at a path that may not exist) set to an arbitrary value."""
    keys, value = path_and_value
    if not isinstance(document, dict) or not keys:
        return value
    return {**document, keys[0]: _with_member(document.get(keys[0]), (keys[1:], value))}


members = st.tuples(st.lists(st.sampled_from(["model", "input", "parameters", "prompt", "messages", "content", "n", "size",
                                               "seed", "images", "image", "text", "role", "function"]), max_size=3), json_values)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(REQUESTS), profile=st.sampled_from(PROFILES), data=st.data(), change=members)
def test_schema_shaped_requests_and_their_neighbours(name, profile, data, change):
    document = data.draw(from_schema(_generable(ds.load_schema(name, profile))), label="document")
    _agrees(document, name, profile)
    _agrees(_with_member(document, change), name, profile)


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(ds.schema_names()), profile=st.sampled_from(PROFILES), document=json_values)
def test_arbitrary_json_against_every_schema(name, profile, document):
    _agrees(document, name, profile)


@pytest.mark.parametrize("document", [
    {"model": "qwen-image-plus", "input": {"prompt": "a cat"}, "parameters": {"n": 1}},
    {"model": "wanx-v1", "input": {"prompt": "a cat"}, "parameters": {"size": "1024*1024", "n": 4, "seed": 42}},
])
def test_an_ordinary_request_takes_the_fast_path(document):
    # Where the speed comes from: without this, every request would pay for the slow validator.
    assert fast_validator_for("image-synthesis.text2image.request").is_valid(document)
    assert validator_for("image-synthesis.text2image.request").is_valid(document)


def test_a_trailing_newline_the_dialects_disagree_on_is_judged_by_jsonschema():
    # Python's "$" matches before a final newline, ECMA's does not: the fast validator refuses,
    # jsonschema decides, and the verdict is what it always was.
    document = {"model": "wanx-v1", "input": {"prompt": "a cat"}, "parameters": {"size": "1024*1024\n"}}
    name = "image-synthesis.text2image.request"
    assert not fast_validator_for(name).is_valid(document)
    assert validator_for(name).is_valid(document)  # Python's dialect
    assert ds.validate(document, name) == []
