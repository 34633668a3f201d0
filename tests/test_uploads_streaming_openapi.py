"""Local-file uploads (policy, OSS-like POST, oss:// inputs), server-sent events, /openapi.json."""

from __future__ import annotations

import io
import json

import dashscope_schemas as ds
import pytest
from helpers import ASYNC, PATHS, auth, demo_key
from PIL import Image

API = "/cn-beijing/api/v1"


def png(width=800, height=600) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def policy(client, key=None, region="cn-beijing", model="qwen-image-edit-plus"):
    response = client.get(f"/{region}/api/v1/uploads", params={"action": "getPolicy", "model": model},
                          headers=auth(key or demo_key(region=region)))
    assert response.status_code == 200, response.text
    assert ds.validate(response.json(), "upload-policy.response") == []
    return response.json()["data"]


def upload(client, data, name="photo.png", overrides=None):
    """What the SDK's OssUtils.upload sends: form fields + file, no Authorization."""
    form = {"OSSAccessKeyId": data["oss_access_key_id"], "Signature": data["signature"], "policy": data["policy"],
            "key": f"{data['upload_dir']}/{name}", "x-oss-object-acl": data["x_oss_object_acl"],
            "x-oss-forbid-overwrite": data["x_oss_forbid_overwrite"], "success_action_status": "200",
            "x-oss-content-type": "image/png", **(overrides or {})}
    path = data["upload_host"].removeprefix("http://testserver")
    return client.post(path, data=form, files={"file": (name, png(), "image/png")}), "oss://" + form["key"]


def edit_with(client, image, key=None, **headers):
    body = {"model": "qwen-image-edit-plus", "input": {"messages": [{"role": "user", "content": [{"image": image}, {"text": "x"}]}]}}
    return client.post(API + PATHS["multimodal-generation"], json=body, headers=auth(key, **headers))


def test_upload_then_oss_input_with_the_resolve_header(client):
    response, ref = upload(client, policy(client))
    assert response.status_code == 200 and response.content == b""
    result = edit_with(client, ref, **{"X-DashScope-OssResourceResolve": "enable"})
    assert result.status_code == 200, result.text
    rule = ds.load_catalog().model("qwen-image-edit-plus").size_rule
    assert (result.json()["usage"]["width"], result.json()["usage"]["height"]) == ds.output_size(rule, None, (800, 600))
    wan = client.post(API + PATHS["image2image"], headers=auth(**ASYNC, **{"X-DashScope-OssResourceResolve": "enable"}),
                      json={"model": "wan2.5-i2i-preview", "input": {"prompt": "p", "images": [ref]}})
    assert wan.status_code == 200


def test_oss_input_without_the_header_or_of_someone_else_cannot_be_downloaded(client):
    _, ref = upload(client, policy(client))
    for response in (edit_with(client, ref),
                     edit_with(client, ref, key=demo_key("b"), **{"X-DashScope-OssResourceResolve": "enable"}),
                     edit_with(client, "oss://dashscope-instant/none/x.png", **{"X-DashScope-OssResourceResolve": "enable"})):
        assert (response.status_code, response.json()["code"]) == (400, "InvalidParameter.DataInspection")


def test_upload_host_checks_signature_expiry_key_and_overwrite(client, service):
    data = policy(client)
    for overrides, code in (({"Signature": "bm9wZQ=="}, b"SignatureDoesNotMatch"),
                            ({"key": "elsewhere/photo.png"}, b"AccessDenied"),
                            ({"OSSAccessKeyId": "LTAIother"}, b"InvalidAccessKeyId"),
                            ({"policy": ""}, b"InvalidArgument")):
        response, _ = upload(client, data, overrides=overrides)
        assert response.status_code in (400, 403) and b"<Code>" + code in response.content
    assert upload(client, data)[0].status_code == 200
    again, _ = upload(client, data)
    assert again.status_code == 409 and b"FileAlreadyExists" in again.content
    service.clock.advance(301)
    late, _ = upload(client, data, name="late.png")
    assert late.status_code == 403 and b"Policy expired" in late.content
    assert client.post("/__oss-upload", content=b"junk", headers={"Content-Type": "multipart/form-data; boundary=x"}).status_code == 400


def test_policy_needs_a_model_and_the_action(client):
    assert client.get(f"{API}/uploads", params={"action": "getPolicy"}, headers=auth()).json()["code"] == "InvalidParameter"
    # Any model of the platform gets one, as a real VL model did (observation upload-policy-any-model).
    other = client.get(f"{API}/uploads", params={"action": "getPolicy", "model": "qwen-vl-plus"}, headers=auth())
    assert other.status_code == 200 and other.json()["data"]["max_file_size_mb"] == 1024
    assert client.get(f"{API}/uploads", params={"action": "delete", "model": "qwen-image-plus"}, headers=auth()).status_code == 400
    assert client.get(f"{API}/uploads", params={"action": "getPolicy", "model": "qwen-image-plus"}).status_code == 401


def sse_events(text: str) -> list[dict]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                fields["comment"] = line[1:]
            else:
                name, _, value = line.partition(":")
                fields[name] = value
        events.append(fields)
    return events


@pytest.mark.parametrize("incremental", [True, False, None])
def test_streaming_one_event_per_image(client, incremental):
    params = {"n": 3} | ({"incremental_output": incremental} if incremental is not None else {})
    body = {"model": "qwen-image-edit-plus", "parameters": params,
            "input": {"messages": [{"role": "user", "content": [{"image": "https://e.com/a.png"}, {"text": "x"}]}]}}
    response = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth(**{"X-DashScope-SSE": "enable"}))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [e["id"] for e in events] == ["1", "2", "3"] and {e["event"] for e in events} == {"result"}
    assert {e["comment"] for e in events} == {"HTTP_STATUS/200"}
    chunks = [json.loads(e["data"]) for e in events]
    for chunk in chunks:
        assert ds.validate(chunk, "multimodal-generation.stream-chunk") == []
    counts = [len(c["output"]["choices"][0]["message"]["content"]) for c in chunks]
    assert counts == ([1, 1, 1] if incremental else [1, 2, 3])
    assert [c["output"]["choices"][0]["finish_reason"] for c in chunks] == ["null", "null", "stop"]
    assert chunks[-1]["usage"]["image_count"] == 3 and "usage" not in chunks[0]
    assert len({c["request_id"] for c in chunks}) == 1


def test_streaming_errors(client):
    body = {"model": "qwen-image-edit-plus", "parameters": {"n": 7},
            "input": {"messages": [{"role": "user", "content": [{"image": "https://e.com/a.png"}, {"text": "x"}]}]}}
    # A refused request asked as a stream is refused inside it, as the real stream does (observation
    # sse-validation-error-in-stream): HTTP 200, one event:error carrying the 400 and the envelope.
    invalid = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth(**{"X-DashScope-SSE": "enable"}))
    [event] = sse_events(invalid.text)
    assert invalid.status_code == 200 and invalid.headers["content-type"] == "text/event-stream;charset=UTF-8"
    assert (event["id"], event["event"], event["comment"]) == ("1", "error", "HTTP_STATUS/400")
    refusal = json.loads(event["data"])
    assert (refusal["code"], refusal["message"]) == ("InvalidParameter", "parameters.n must be at most 6")
    assert invalid.headers["x-request-id"] == refusal["request_id"] and "x-dashscope-requestid" not in invalid.headers
    # Who may not call at all is still told so with the HTTP status, before any stream.
    keyless = client.post(API + PATHS["multimodal-generation"], json=body, headers={"X-DashScope-SSE": "enable"})
    assert keyless.status_code == 401 and keyless.json()["code"] == "InvalidApiKey"
    client.post("/__admin/scenarios", json={"effect": {"type": "output_moderation"}, "match": {"endpoint": "multimodal-generation"}})
    body["parameters"]["n"] = 1
    moderated = client.post(API + PATHS["multimodal-generation"], json=body, headers=auth(**{"X-DashScope-SSE": "enable"}))
    [event] = sse_events(moderated.text)
    assert moderated.status_code == 200 and event["event"] == "error" and event["comment"] == "HTTP_STATUS/400"
    error = json.loads(event["data"])
    assert ds.validate(error, "error") == [] and error["code"] == "DataInspectionFailed"


def test_openapi_document_is_valid_and_covers_every_public_route(client):
    from openapi_spec_validator import validate as validate_spec

    from mock_server.app import create_app

    document = client.get("/openapi.json").json()
    validate_spec(document)
    assert document["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    app = create_app()
    served = {(r.path.removeprefix("/api/v1"), m) for r in app.routes if r.path.startswith("/api/v1") for m in r.methods if m != "HEAD"}
    assert documented == served
    schemas = document["components"]["schemas"]
    assert set(schemas) == set(ds.schema_names()) - {"common"}
    for schema in schemas.values():  # each component schema works on its own as JSON Schema
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(schema)


def test_openapi_references_resolve_and_describe_the_same_messages(client):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    document = client.get("/openapi.json").json()
    registry = Registry().with_resource("urn:doc", Resource.opaque(document))
    for name in ("task-query.response", "error", "multimodal-generation.request"):
        validator = Draft202012Validator({"$ref": f"urn:doc#/components/schemas/{name}"}, registry=registry)
        good = {"error": {"request_id": "r", "code": "c", "message": "m"},
                "task-query.response": {"request_id": "r", "output": {"task_id": "t", "task_status": "UNKNOWN"}},
                "multimodal-generation.request": {"model": "m",
                                                  "input": {"messages": [{"role": "user", "content": [{"text": "a"}]}]}}}[name]
        assert validator.is_valid(good)
        assert not validator.is_valid({"output": {"task_status": "NOPE"}})
