"""Catalog rules: each rule rejects the request that breaks it with the right status and code."""

from __future__ import annotations

import dashscope_schemas as ds
import pytest
from helpers import FIXTURES, load_json

RULES = load_json(FIXTURES / "requests" / "catalog-rules.json")


def _request(case):
    base = RULES["bases"][case["base"]]
    body = ds.merge_patch(base["body"], case["patch"])
    return case.get("endpoint", base["endpoint"]), body, case.get("headers", base["headers"])


def _params(kind):
    for case in RULES[kind]:
        for profile in case["profiles"]:
            yield pytest.param(case, profile, id=f"{profile}: {case['why']}")


@pytest.mark.parametrize("case, profile", list(_params("invalid")))
def test_rule_rejects_the_request_that_breaks_it(case, profile):
    endpoint, body, headers = _request(case)
    verdict = ds.load_catalog(profile).check_request(endpoint, body, headers)
    assert not verdict.ok and verdict.request is None
    error = verdict.error
    assert (error.rule, error.status, error.code) == (case["expect"]["rule"], case["expect"]["status"], case["expect"]["code"])
    if error.code == "InvalidParameter" and error.rule not in ("model-exists", "model-endpoint"):
        assert error.path in error.message and error.rule in error.message  # names the field and the rule


@pytest.mark.parametrize("case, profile", list(_params("valid")))
def test_valid_request_passes(case, profile):
    endpoint, body, headers = _request(case)
    verdict = ds.load_catalog(profile).check_request(endpoint, body, headers)
    assert verdict.ok, verdict.violations
    assert verdict.request.model.name == body["model"]


def test_every_base_request_is_valid_in_both_profiles():
    for name, base in RULES["bases"].items():
        for profile in ("current", "2025-12"):
            assert ds.load_catalog(profile).check_request(base["endpoint"], base["body"], base["headers"]).ok, (name, profile)


def test_wire_messages_of_gateway_errors_are_the_documented_ones():
    c = ds.load_catalog()
    base = RULES["bases"]["t2i-async"]
    cases = {
        "Model not exist.": ("text2image", ds.merge_patch(base["body"], {"model": "nope"}), base["headers"]),
        "url error, please check url!": ("text2image", ds.merge_patch(base["body"], {"model": "qwen-image-max"}), base["headers"]),
        "current user api does not support synchronous calls.": ("text2image", base["body"], {}),
    }
    for message, (endpoint, body, headers) in cases.items():
        assert c.check_request(endpoint, body, headers).error.message == message


def test_model_rules_catch_every_broken_rule_not_only_the_first():
    base = RULES["bases"]["edit"]
    body = ds.merge_patch(base["body"], {"parameters": {"n": 2}, "input": {"messages": [{"role": "user", "content": [{"text": "a"}]}]}})
    verdict = ds.load_catalog().check_request("multimodal-generation", body, {})
    assert [v.rule for v in verdict.violations] == ["n-range", "image-count"]


def test_long_texts_are_truncated_not_rejected():
    c = ds.load_catalog()
    long_prompt, long_negative = "p" * 801 + "TAIL", "n" * 600
    body = {"model": "qwen-image-edit-plus", "parameters": {"negative_prompt": long_negative},
            "input": {"messages": [{"role": "user", "content": [{"image": "https://e/a.png"}, {"text": long_prompt}]}]}}
    request = c.check_request("multimodal-generation", body, {}).request
    assert request.orig_prompt == long_prompt and request.prompt == long_prompt[:800]
    assert request.negative_prompt == long_negative[:500]
    wan = {"model": "wan2.5-i2i-preview", "input": {"prompt": "w" * 2500, "images": ["https://e/a.png"]}}
    request = c.check_request("image2image", wan, {"X-DashScope-Async": "enable"}).request
    assert len(request.prompt) == 2000 and len(request.orig_prompt) == 2500


def test_normalised_request_fills_defaults_and_drops_what_the_model_ignores():
    c = ds.load_catalog()
    wan = c.check_request("image2image", {"model": "wan2.5-i2i-preview", "input": {"prompt": "a", "images": ["https://e/a.png"]}},
                          {"X-DashScope-Async": "enable"}).request
    assert wan.n == 4 and wan.size is None and wan.prompt_extend is True and wan.watermark is False
    edit = c.check_request("multimodal-generation", {"model": "qwen-image-edit",
                                                     "parameters": {"size": "1024*1024", "prompt_extend": True, "seed": 7},
                           "input": {"messages": [{"role": "user", "content": [{"image": "https://e/a.png"}, {"text": "a"}]}]}}, {}).request
    assert edit.size is None and edit.prompt_extend is False and edit.seed == 7 and edit.n == 1


def test_data_uri_images_are_decoded_and_size_checked():
    import base64
    c = ds.load_catalog()
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    body = {"model": "qwen-image-edit-plus",
            "input": {"messages": [{"role": "user", "content": [
                {"image": "data:image/png;base64," + base64.b64encode(png).decode()}, {"text": "a"}]}]}}
    request = c.check_request("multimodal-generation", body, {}).request
    assert request.images[0].data == png and request.images[0].mime == "image/png"
    big = base64.b64encode(b"\0" * (10 * 1024 * 1024 + 1)).decode()
    body["input"]["messages"][0]["content"][0]["image"] = "data:image/jpeg;base64," + big
    error = c.check_request("multimodal-generation", body, {}).error
    assert (error.rule, error.code, error.status) == ("image-bytes", "InvalidFile.ImageSize", 400)


def test_region_without_the_model_answers_model_not_exist():
    c = ds.load_catalog()
    base = RULES["bases"]["t2i-async"]
    assert c.check_request("text2image", base["body"], base["headers"], region="cn-beijing").ok
    error = c.check_request("text2image", base["body"], base["headers"], region="eu-central-1").error
    assert (error.rule, error.message) == ("model-exists", "Model not exist.")


def test_unknown_endpoint_is_a_programming_error():
    with pytest.raises(KeyError, match="text2image"):
        ds.load_catalog().check_request("text2video", {}, {})
