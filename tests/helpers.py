"""Helpers of the kit's HTTP tests: request bodies, polling, error and image assertions."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import dashscope_schemas as ds
from conftest import ASYNC, PATHS, auth, demo_key
from PIL import Image

API = "/cn-beijing/api/v1"
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def edit_body(model="qwen-image-edit-plus", text="make it blue", images=("https://e.com/a.png",), **params):
    content = [{"image": i} for i in images] + [{"text": text}]
    return {"model": model, "input": {"messages": [{"role": "user", "content": content}]}, "parameters": params}


def t2i_body(model="qwen-image-plus", prompt="a cat", **params):
    return {"model": model, "input": {"prompt": prompt}, "parameters": params}


def wan_body(prompt="put the clock by the vase", images=("https://e.com/a-tps-1104-1472.webp",), **params):
    return {"model": "wan2.5-i2i-preview", "input": {"prompt": prompt, "images": list(images)}, "parameters": params}


def assert_error(response, status, code, message=None, name="error"):
    assert response.status_code == status, response.text
    body = response.json()
    assert ds.validate(body, name) == []
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message
    return body


def png_size(client, url) -> tuple[int, int]:
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG"
        return image.size


def create(client, body, endpoint="text2image", key=None, region="cn-beijing"):
    response = client.post(f"/{region}/api/v1{PATHS[endpoint]}", json=body, headers=auth(key or demo_key(region=region), **ASYNC))
    assert response.status_code == 200, response.text
    assert ds.validate(response.json(), "task-created.response") == []
    return response.json()["output"]["task_id"]


def poll(client, task_id, key=None, region="cn-beijing"):
    response = client.get(f"/{region}/api/v1/tasks/{task_id}", headers=auth(key or demo_key(region=region)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert ds.validate(body, "task-query.response") == [], body
    return body
