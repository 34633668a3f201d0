"""Helpers of the end-to-end tests through the official SDK: demo keys, prompts, scenarios and
usage through the admin API, images and SDK answers."""

from __future__ import annotations

import base64
import io
from datetime import datetime

import httpx
from dashscope import ImageSynthesis
from dashscope_schemas import load_catalog
from helpers import demo_key
from PIL import Image

CATALOG = load_catalog()
ERRORS = CATALOG.errors  # error-codes.json: key -> {status, code, message}

KEY_A = demo_key("a")                            # account a, Beijing
KEY_B = demo_key("b")                            # account b, Beijing
KEY_A_SG = demo_key("a", region="ap-southeast-1")

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
EDIT_PROMPT = "turn the sky violet"
# The fake never downloads http(s) inputs; it reads the size a CDN-style file name announces.
LANDSCAPE_URL = "https://img.example.com/i/first-tps-1600-900.jpg"
SERVICE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def add_scenario(live, match: dict, effect: dict, times: int | None = None) -> dict:
    """POST /__admin/scenarios, as a user of the fake would; returns the stored scenario."""
    body = {"match": match, "effect": effect, **({"times": times} if times is not None else {})}
    response = httpx.post(live.origin + "/__admin/scenarios", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def scenario_state(live, scenario_id: str) -> dict:
    """The scenario as GET /__admin/scenarios shows it now (applied, remaining)."""
    listed = httpx.get(live.origin + "/__admin/scenarios", timeout=10).json()["scenarios"]
    return next(s for s in listed if s["id"] == scenario_id)


def usage_report(live) -> dict:
    response = httpx.get(live.origin + "/__admin/usage", timeout=10)
    assert response.status_code == 200
    return response.json()


def usage_line(report: dict, account: str, region: str, model: str) -> dict | None:
    return next((line for line in report["usage"]
                 if (line["account"], line["region"], line["model"]) == (f"demo-account-{account}", region, model)), None)


def write_png(path, width: int, height: int) -> str:
    """A real PNG on disk whose name announces nothing: the fake must read the uploaded bytes."""
    Image.new("RGB", (width, height), (200, 80, 40)).save(path, format="PNG")
    return "file://" + str(path)


def text_messages(text: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": [{"text": text}]}]


def service_time(text: str) -> datetime:
    return datetime.strptime(text, SERVICE_TIME)


def documented_timing(live, model: str, pending: float, running: float):
    """The fake's task timing for `model`, checked to be the documented default this file relies on."""
    timing = live.service.config.timing_for(model)
    assert (timing.mode, timing.pending, timing.running) == ("time", pending, running), timing
    return timing


def png_size(url: str) -> tuple[int, int]:
    """Download a result URL (no API key, like an OSS presigned URL) and return the PNG's size."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG"
        return image.size


def submit(model: str = "qwen-image-plus", api_key: str = KEY_A, **kwargs):
    """ImageSynthesis.async_call that must succeed; returns the task id."""
    created = ImageSynthesis.async_call(model=model, prompt=PROMPT, api_key=api_key, **kwargs)
    assert created.status_code == 200, (created.code, created.message)
    assert created.output.task_status == "PENDING"
    assert created.output.task_id
    return created.output.task_id


def edit_messages(*images: str, text: str = EDIT_PROMPT) -> list[dict]:
    return [{"role": "user", "content": [*({"image": ref} for ref in images), {"text": text}]}]


def png_data_uri(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def result_images(response) -> list[str]:
    return [item["image"] for item in response.output.choices[0].message.content]
