"""The generation endpoints over HTTP: sizes, seeds, input images, validation errors."""

from __future__ import annotations

import base64
import io
from urllib.parse import urlsplit

import dashscope_schemas as ds
import pytest
from helpers import API, ASYNC, PATHS, assert_error, auth, edit_body, png_size, t2i_body, wan_body
from PIL import Image


def test_multimodal_edit_returns_n_images_of_the_rounded_size(client):
    response = client.post(API + PATHS["multimodal-generation"], json=edit_body(n=2, size="1033*1032"), headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert ds.validate(body, "multimodal-generation.response") == []
    content = body["output"]["choices"][0]["message"]["content"]
    assert body["usage"] == {"width": 1040, "height": 1024, "image_count": 2} and len(content) == 2
    assert [png_size(client, c["image"]) for c in content] == [(1040, 1024)] * 2


def test_same_seed_same_bytes_and_different_index_different_bytes(client):
    def images(seed):
        body = client.post(API + PATHS["multimodal-generation"], json=edit_body(n=2, seed=seed), headers=auth()).json()
        urls = [c["image"] for c in body["output"]["choices"][0]["message"]["content"]]
        return [client.get(urlsplit(u).path + "?" + urlsplit(u).query).content for u in urls]

    first, again, other = images(123), images(123), images(124)
    assert first == again and first[0] != first[1] and first[0] != other[0]


def test_no_size_follows_the_last_input_images_aspect(client):
    def png_uri(w, h):
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (10, 20, 30)).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    rule = ds.load_catalog().model("qwen-image-edit-plus").size_rule
    body = edit_body(images=(png_uri(900, 900), png_uri(600, 400)))
    usage = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).json()["usage"]
    assert (usage["width"], usage["height"]) == ds.output_size(rule, None, (600, 400))
    assert abs(usage["width"] / usage["height"] - 1.5) < 0.02
    from_url = client.post(API + PATHS["multimodal-generation"], headers=auth(),
                           json=edit_body(images=("https://img.example.com/x-tps-1104-1472.webp",))).json()["usage"]
    assert (from_url["width"], from_url["height"]) == ds.output_size(rule, None, (1104, 1472))


def test_text_to_image_models_use_their_default_size(client):
    for model in ("qwen-image-max", "qwen-image-2.0-pro"):
        body = {"model": model, "input": {"messages": [{"role": "user", "content": [{"text": "a poster"}]}]}}
        usage = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).json()["usage"]
        assert ds.format_size((usage["width"], usage["height"])) == ds.load_catalog().model(model).size_rule.default


def test_an_unreadable_data_uri_image_is_a_400(client):
    bad = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n garbage").decode()
    response = client.post(API + PATHS["multimodal-generation"], json=edit_body(images=(bad,)), headers=auth())
    assert_error(response, 400, "InvalidParameter")


def test_validation_errors_are_400_in_the_services_words_or_naming_field_and_limit(client):
    assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(model="qwen-image-edit", n=2),
                             headers=auth()), 400, "InvalidParameter", "num_images_per_prompt must be 1.")
    body = assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(n=7), headers=auth()), 400, "InvalidParameter")
    assert body["message"] == "parameters.n must be at most 6"
    assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(model="qwen-image-ultra"), headers=auth()),
                 400, "InvalidParameter", "Model not exist.")
    url_error = "url error, please check url！ For details, see: https://help.aliyun.com/zh/model-studio/error-code#error-url"
    assert_error(client.post(API + PATHS["text2image"], json=t2i_body(model="qwen-image-max"), headers=auth(**ASYNC)),
                 403, "AccessDenied", "current user api does not support asynchronous calls.")
    assert_error(client.post(API + PATHS["multimodal-generation"], json=wan_body(), headers=auth()),
                 400, "InvalidParameter", url_error)
    assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(), headers=auth(**ASYNC)),
                 403, "AccessDenied", "current user api does not support asynchronous calls.")
    assert_error(client.post(API + PATHS["image2image"], json=wan_body(), headers=auth()),
                 403, "AccessDenied", "current user api does not support synchronous calls.")


def test_unknown_parameters_are_ignored(client):
    body = edit_body(n=1, result_format="message", stream=False, temperature=0.3)
    body["extra_top_level"] = {"x": 1}
    assert client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()).status_code == 200


def test_profile_2025_12_rejects_size_with_n_above_1():
    from helpers import AppClient, make_service

    from mock_server.app import create_app

    client = AppClient(create_app(service=make_service(profile="2025-12")))
    try:
        body = assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(n=2, size="1024*1024"),
                                        headers=auth()), 400, "InvalidParameter")
        assert body["message"] == "parameters.size is only supported when n is 1"
        assert client.post(API + PATHS["multimodal-generation"], json=edit_body(n=1, size="1024*1024"), headers=auth()).status_code == 200
        assert_error(client.post(API + PATHS["multimodal-generation"], json=edit_body(model="qwen-image-edit-max"), headers=auth()),
                     400, "InvalidParameter", "Model not exist.")
    finally:
        client.close()


def _png_announcing(width: int, height: int) -> bytes:
    """A well-formed PNG whose header announces width x height (its pixel data is empty): a
    decompression bomb's calling card when the canvas is huge."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height, status", [(100_000, 100_000, 400), (12_000, 12_000, 200), (3000, 1000, 200)])
def test_hostile_images_are_handled_by_their_header_never_a_crash(client, width, height, status):
    """The fake reads only dimensions: a huge but plausible header is used, an absurd one refused."""
    uri = "data:image/png;base64," + base64.b64encode(_png_announcing(width, height)).decode()
    response = client.post(API + PATHS["multimodal-generation"], json=edit_body(images=(uri,)), headers=auth())
    if status == 400:
        assert_error(response, 400, "InvalidParameter")
    else:
        assert response.status_code == 200, response.text
        rule = ds.load_catalog().model("qwen-image-edit-plus").size_rule
        usage = response.json()["usage"]
        assert (usage["width"], usage["height"]) == ds.output_size(rule, None, (width, height))


def test_error_messages_do_not_quote_large_inputs_back(client):
    big = "data:image/png;base64," + "A" * 2_000_000
    body = edit_body(images=(big, big, big, big))  # one image too many: "[...] is too long"
    error = assert_error(client.post(API + PATHS["multimodal-generation"], json=body, headers=auth()), 400, "InvalidParameter")
    assert len(error["message"]) < 400 and "input.messages[0].content" in error["message"]
