"""Catalog rules: each rule rejects the request that breaks it with the right status and code."""

from __future__ import annotations

import re

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
    assert_reads_like_the_service(ds.load_catalog(profile), error)


# What a message of the fake may never carry: a regex, a Python repr, jsonschema's own words.
_NOT_FOR_CLIENTS = re.compile(r"\^|\$'|\\\\|\['|\{'|\(rule:|is not valid under any|is a required property|does not match '")


def assert_reads_like_the_service(catalog, error):
    """A refusal answers with a fixed text of the error table (the page's or an observed one), a
    text the service was seen to use (size), or a short sentence naming the field; never a dump."""
    fixed = {entry["message"] for key, entry in catalog.errors.items() if key != "invalid_parameter"}
    observed = error.message.startswith(("The size does not match the allowed size ", "Image area must be between "))
    names_field = error.path.rsplit(".", 1)[-1] in error.message or "input image" in error.message
    assert error.message in fixed or observed or names_field, error
    assert len(error.message) <= 200 and not _NOT_FOR_CLIENTS.search(error.message), error.message


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
        # The current text, with its full-width mark and help link (observation url-error-message).
        "url error, please check url！ For details, see: https://help.aliyun.com/zh/model-studio/error-code#error-url":
            ("text2image", ds.merge_patch(base["body"], {"model": "wan2.5-i2i-preview"}), base["headers"]),
        "current user api does not support synchronous calls.": ("text2image", base["body"], {}),
        "current user api does not support asynchronous calls.":
            ("text2image", ds.merge_patch(base["body"], {"model": "qwen-image-max"}), base["headers"]),
        'Required parameter "model" missing from request.': ("text2image", ds.merge_patch(base["body"], {"model": None}), base["headers"]),
        "Required input parameter missing from request.": ("text2image", ds.merge_patch(base["body"], {"input": None}), base["headers"]),
        "The size does not match the allowed size 1664*928,1472*1104,1328*1328,1104*1472,928*1664.":
            ("text2image", ds.merge_patch(base["body"], {"parameters": {"size": "512*512"}}), base["headers"]),
        "num_images_per_prompt must be 1.": ("text2image", ds.merge_patch(base["body"], {"parameters": {"n": 2}}), base["headers"]),
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


def test_messages_of_the_message_list_and_content_are_the_services_or_name_the_limit():
    c = ds.load_catalog()
    edit = RULES["bases"]["edit-plus"]
    message = edit["body"]["input"]["messages"][0]

    def said(messages):
        body = ds.merge_patch(edit["body"], {"input": {"messages": messages}})
        return c.check_request("multimodal-generation", body, edit["headers"]).error.message

    assert said([]) == "No messages found in input"
    assert said([message, message]) == "messages length only support 1"
    images = [{"image": f"https://e/{i}.png"} for i in range(4)]
    assert said([{"role": "user", "content": [*images, {"text": "a"}]}]) == \
        "input.messages[0].content must have at most 3 images and one text item"
    assert said([{"role": "user", "content": [{"image": "https://e/a.png"}, {"text": "a"}, {"text": "b"}]}]) == \
        "input.messages[0].content must have exactly one text item"
    assert said([{"role": "user", "content": [{"image": "https://e/a.png"}, {"text": "a"}, {"video": "x"}]}]) == \
        'input.messages[0].content[2] must be either {"image": URL} or {"text": prompt}'
    assert said([{"role": "user", "content": [{"image": "not a url"}, {"text": "a"}]}]) == \
        "The provided URL does not appear to be valid. Ensure it is correctly formatted."
    big = "data:image/png;base64," + "A" * 20_000_000
    assert "AAAA" not in said([{"role": "user", "content": [{"image": big}, {"text": "a"}]}])
    t2i = RULES["bases"]["t2i-async"]
    wrong_size = ds.merge_patch(t2i["body"], {"parameters": {"size": "1024x1024"}})
    assert c.check_request("text2image", wrong_size, t2i["headers"]).error.message == "parameters.size must be W*H, e.g. 1024*1024"
    total = RULES["bases"]["t2i-2.0"]
    tiny = ds.merge_patch(total["body"], {"parameters": {"size": "3*3"}})
    assert c.check_request(total["endpoint"], tiny, total["headers"]).error.message == \
        "Image area must be between 262144 and 4194304 pixels. Got area=9 (width=3, height=3)."
