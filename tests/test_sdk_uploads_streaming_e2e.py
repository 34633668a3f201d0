"""End to end through the official, unmodified `dashscope` SDK: local-file uploads (file:// inputs)
and streaming (server-sent events), against the live fake, the SDK's polling on its virtual clock.
"""

from __future__ import annotations

import json

import httpx
import pytest
from dashscope import ImageSynthesis, MultiModalConversation
from dashscope_schemas import output_size
from helpers import PATHS, freeze
from sdk_helpers import (
    CATALOG,
    EDIT_PROMPT,
    ERRORS,
    KEY_A,
    LANDSCAPE_URL,
    add_scenario,
    edit_messages,
    png_size,
    result_images,
    write_png,
)

# --- file:// uploads ---------------------------------------------------------------------------------


def test_edit_plus_with_a_local_file_follows_its_aspect(live, sdk, tmp_path):
    rule = CATALOG.model("qwen-image-edit-plus").size_rule
    expected = output_size(rule, None, (800, 600))
    assert expected[0] / expected[1] == pytest.approx(4 / 3, rel=0.02)  # not the 1:1 of an unknown size

    local = write_png(tmp_path / "holiday.png", 800, 600)
    response = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(local), api_key=KEY_A)
    assert response.status_code == 200, (response.code, response.message)
    assert (response.usage["width"], response.usage["height"], response.usage["image_count"]) == (*expected, 1)
    urls = result_images(response)
    assert len(urls) == 1
    assert png_size(urls[0]) == expected


def test_wan25_with_a_local_file_end_to_end(live, sdk, tmp_path, virtual_sleep, wire):
    rule = CATALOG.model("wan2.5-i2i-preview").size_rule
    expected = output_size(rule, None, (800, 600))
    assert expected[0] / expected[1] == pytest.approx(4 / 3, rel=0.02)
    freeze(live)

    local = write_png(tmp_path / "sketch.png", 800, 600)
    done = ImageSynthesis.call(model="wan2.5-i2i-preview", prompt=EDIT_PROMPT, images=[local], n=1, api_key=KEY_A)
    assert done.status_code == 200, (done.code, done.message)
    assert done.output.task_status == "SUCCEEDED"
    assert done.output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    assert png_size(done.output.results[0].url) == expected
    # The SDK's own exchange: the policy, the multipart POST to the fake's upload host (no key),
    # then the task with oss://<key> and X-DashScope-OssResourceResolve.
    policy, upload, submit = wire.calls[:3]
    assert (policy["method"], policy["path"], policy["params"]) == (
        "GET", "/cn-beijing/api/v1/uploads", {"action": "getPolicy", "model": "wan2.5-i2i-preview"})
    assert (upload["method"], upload["path"]) == ("POST", "/__oss-upload")
    assert "Authorization" not in upload["headers"]
    assert (submit["method"], submit["path"]) == ("POST", "/cn-beijing/api/v1" + PATHS["image2image"])
    assert submit["headers"]["X-DashScope-OssResourceResolve"] == "enable"
    sent = json.loads(submit["data"])["input"]["images"]
    assert len(sent) == 1 and sent[0].startswith("oss://dashscope-instant/") and sent[0].endswith("/sketch.png")


# --- streaming ------------------------------------------------------------------------------------


def test_stream_incremental_one_new_image_per_chunk(live, sdk):
    chunks = list(MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL),
                                              n=2, size="1024*768", stream=True, incremental_output=True, api_key=KEY_A))
    assert [c.status_code for c in chunks] == [200, 200]
    per_chunk = [result_images(c) for c in chunks]
    assert [len(images) for images in per_chunk] == [1, 1]  # each event carries only its new image
    assert [c.output.choices[0].finish_reason for c in chunks] == ["null", "stop"]
    assert chunks[-1].usage["image_count"] == 2
    assert (chunks[-1].usage["width"], chunks[-1].usage["height"]) == (1024, 768)
    urls = [images[0] for images in per_chunk]
    assert len(set(urls)) == 2
    assert [png_size(url) for url in urls] == [(1024, 768), (1024, 768)]


def test_stream_cumulative_by_default_last_chunk_has_both(live, sdk):
    # incremental_output not given: the wire is cumulative, each event repeats the images so far.
    chunks = list(MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL),
                                              n=2, size="1024*768", stream=True, api_key=KEY_A))
    per_chunk = [result_images(c) for c in chunks]
    assert [len(images) for images in per_chunk] == [1, 2]
    assert per_chunk[1][0] == per_chunk[0][0]
    assert len(set(per_chunk[1])) == 2
    assert chunks[-1].output.choices[0].finish_reason == "stop"
    assert chunks[-1].usage["image_count"] == 2
    assert [png_size(url) for url in per_chunk[1]] == [(1024, 768), (1024, 768)]


def test_stream_incremental_false_sdk_merges_client_side(live, sdk, wire):
    # incremental_output=False: the SDK sends incremental_output true on the wire and merges the
    # chunks itself (dashscope.utils.message_utils.merge_multimodal_single_response). That merge is
    # written for text: it rebuilds multimodal content from the text parts only, so the images are
    # dropped, and with n=2 and no choice `index` it waits for a second finished choice that never
    # comes, so "stop" is hidden. This records what SDK 2.0.2 yields; what the fake put on the wire
    # (two well-formed events with one image each) is checked by test_stream_wire_format_raw.
    chunks = list(MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL),
                                              n=2, size="1024*768", stream=True, incremental_output=False, api_key=KEY_A))
    sent = [call for call in wire.calls if call["path"].endswith(PATHS["multimodal-generation"])]
    assert len(sent) == 1
    assert sent[0]["headers"]["X-DashScope-SSE"] == "enable"
    assert json.loads(sent[0]["data"])["parameters"]["incremental_output"] is True  # forced by the SDK

    assert [c.status_code for c in chunks] == [200, 200]  # one per wire event, none lost
    assert [c.output.choices[0].message.content for c in chunks] == [[{"text": ""}], [{"text": ""}]]
    assert [c.output.choices[0].finish_reason for c in chunks] == ["null", "null"]
    # The usage of the last event does come through untouched.
    assert chunks[-1].usage["image_count"] == 2
    assert (chunks[-1].usage["width"], chunks[-1].usage["height"]) == (1024, 768)


def test_stream_wire_format_raw(live):
    body = {"model": "qwen-image-edit-plus",
            "input": {"messages": edit_messages(LANDSCAPE_URL)},
            "parameters": {"n": 2, "size": "1024*768", "incremental_output": True}}
    headers = {"Authorization": f"Bearer {KEY_A}", "X-DashScope-SSE": "enable", "Accept": "text/event-stream"}
    with httpx.stream("POST", live.base_url() + PATHS["multimodal-generation"], json=body, headers=headers,
                      timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode("utf-8")
    events = [block.split("\n") for block in text.split("\n\n") if block]
    assert len(events) == 2
    datas = []
    for number, lines in enumerate(events, start=1):
        assert lines[:3] == [f"id:{number}", "event:result", ":HTTP_STATUS/200"]
        assert len(lines) == 4 and lines[3].startswith("data:")
        datas.append(json.loads(lines[3].removeprefix("data:")))
    assert [len(d["output"]["choices"][0]["message"]["content"]) for d in datas] == [1, 1]
    assert [d["output"]["choices"][0]["finish_reason"] for d in datas] == ["null", "stop"]
    assert "usage" not in datas[0]
    assert datas[1]["usage"] == {"width": 1024, "height": 768, "image_count": 2}
    assert datas[0]["request_id"] == datas[1]["request_id"]
    urls = [d["output"]["choices"][0]["message"]["content"][0]["image"] for d in datas]
    assert len(set(urls)) == 2


def test_stream_failure_arrives_as_an_error_event(live, sdk):
    # A failure found while generating is sent inside the stream: HTTP 200, then one event:error
    # whose data is the error envelope and whose :HTTP_STATUS comment is the error's status.
    add_scenario(live, {"endpoint": "multimodal-generation"}, {"type": "task_failed"}, times=1)
    chunks = list(MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit_messages(LANDSCAPE_URL),
                                              n=2, stream=True, incremental_output=True, api_key=KEY_A))
    assert len(chunks) == 1
    assert (chunks[0].code, chunks[0].message) == ("InternalError", ERRORS["internal_error"]["message"])
    assert chunks[0].output is None
    # (The SDK's status_code here is its own default for in-band errors, 400: it reads only
    # `status:` lines, and the HTTP status was 200. See the raw exchange below.)

    add_scenario(live, {"endpoint": "multimodal-generation"}, {"type": "task_failed"}, times=1)
    body = {"model": "qwen-image-edit-plus", "input": {"messages": edit_messages(LANDSCAPE_URL)}, "parameters": {"n": 2}}
    raw = httpx.post(live.base_url() + PATHS["multimodal-generation"], json=body, timeout=10,
                     headers={"Authorization": f"Bearer {KEY_A}", "X-DashScope-SSE": "enable"})
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    lines = raw.text.strip("\n").split("\n")
    assert lines[:3] == ["id:1", "event:error", ":HTTP_STATUS/500"]
    data = json.loads(lines[3].removeprefix("data:"))
    assert (data["code"], data["message"]) == ("InternalError", ERRORS["internal_error"]["message"])
    assert data["request_id"]
    assert len(lines) == 4
