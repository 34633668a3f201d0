"""The deterministic part of the suite: for every model and endpoint, requests at the edges of
each catalog rule (valid and broken), derived from the catalog, so that every documented
difference between two API versions is requested at least once."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import dashscope_schemas as ds

from .checks import Expect
from .requests import ASYNC, UNKNOWN_MODEL_SUFFIX, auth_expect, body_for, error_expect, headers_for, oracle, sample_image

PROMPT = "a lighthouse on a cliff at dusk, watercolour"


@dataclass
class Case:
    id: str
    endpoint: str
    model: str
    body: Any
    headers: dict[str, str]
    expect: Expect
    key: str = "default"          # default, none, invalid, other_region
    spend: int = 0                # images this request makes if the server accepts it
    facts: dict[str, Any] = field(default_factory=dict)
    method: str = "POST"
    raw: bytes | None = None      # a body sent as these bytes instead of `body` as JSON
    path: str | None = None       # a path (below the base URL) instead of the endpoint's


def _images_for(model: ds.Model, count: int | None = None) -> list[str]:
    limits = model.input_images
    count = limits.min if count is None else count
    # Different aspect ratios, so that "the last image decides" is visible.
    shapes = [(480, 640), (640, 480), (512, 512)]
    return [sample_image(*shapes[i % len(shapes)]) for i in range(count)]


def _valid_sizes(model: ds.Model) -> list[str]:
    return model.size_rule.edge_sizes()[0] if "size" in model.parameters else []


def _invalid_sizes(model: ds.Model) -> list[str]:
    return model.size_rule.edge_sizes()[1] if "size" in model.parameters else []


def catalog_cases(catalog: ds.Catalog, models: list[str], region: str, *, cheap: bool,
                  has_other_region_key: bool) -> list[Case]:
    cases: list[Case] = []

    def add(case_id: str, endpoint: str, model: ds.Model, body: Any, headers: dict[str, str] | None = None,
            key: str = "default", expect: Expect | None = None, **facts: Any) -> None:
        headers = headers_for(catalog, endpoint) if headers is None else headers
        expect = expect or oracle(catalog, endpoint, body, headers, region)
        spend = expect.images or 0 if expect.accepted else 0
        cases.append(Case(f"{model.name}/{endpoint}/{case_id}", endpoint, model.name, body, headers, expect, key, spend, facts))

    for name in models:
        model = catalog.model(name)
        if model is None or region not in model.regions:
            continue
        for endpoint in model.endpoints:
            base = body_for(endpoint, name, PROMPT, _images_for(model), {"n": model.n.min})

            def variant(base: dict[str, Any] = base, **params: Any) -> dict[str, Any]:
                body = copy.deepcopy(base)
                body["parameters"].update(params)
                return body

            add("minimal", endpoint, model, base)
            if not cheap:
                for size in _valid_sizes(model):
                    add(f"size-{size}-n-max", endpoint, model, variant(size=size, n=model.n.max))
                if model.input_images.max >= 2:
                    add("last-image-decides", endpoint, model,
                        body_for(endpoint, name, PROMPT, _images_for(model, model.input_images.max), {"n": 1}))
                add("unknown-parameter", endpoint, model, variant(contract_probe={"ignored": True}))
            limit = model.prompt.max_chars
            long_body = copy.deepcopy(base)
            long_prompt = ("a quiet harbour at dawn " * (limit // 20 + 10))[: limit + 60]
            long_body = body_for(endpoint, name, long_prompt, _images_for(model), {"n": model.n.min, "prompt_extend": False})
            add("prompt-over-limit", endpoint, model, long_body, prompt_limit=limit, prompt_extend=False)
            # One broken rule each: the oracle (catalog) says which status and code.
            if model.n.max < 6:
                add("n-above-model-max", endpoint, model, variant(n=model.n.max + 1))
            add("n-above-any-max", endpoint, model, variant(n=7))
            for size in _invalid_sizes(model):
                add(f"size-{size}", endpoint, model, variant(size=size))
            add("seed-too-large", endpoint, model, variant(seed=2147483648))
            images_path = catalog.endpoints[endpoint].images_path
            if images_path:
                add("too-many-images", endpoint, model,
                    body_for(endpoint, name, PROMPT, _images_for(model, model.input_images.max + 1), {"n": 1}))
                if model.input_images.min > 0:
                    add("too-few-images", endpoint, model,
                        body_for(endpoint, name, PROMPT, _images_for(model, model.input_images.min - 1), {"n": 1}))
            prompt_path = catalog.endpoints[endpoint].prompt_path or ""
            if not ds.paths.is_field(prompt_path):  # the prompt is one item of a content list
                two_texts = copy.deepcopy(base)
                ds.paths.put_at(two_texts, prompt_path, ["and another"])
                add("two-texts", endpoint, model, two_texts)
            else:
                no_prompt = copy.deepcopy(base)
                ds.paths.remove_at(no_prompt, prompt_path)
                add("missing-prompt", endpoint, model, no_prompt)
            if catalog.endpoints[endpoint].async_header == "required":
                add("missing-async-header", endpoint, model, base, headers={})
            for other in catalog.generation_endpoints:
                if other not in model.endpoints:
                    add(f"on-{other}", other, model, body_for(other, name, PROMPT, _images_for(model, max(1, model.input_images.min)),
                                                            {"n": model.n.min}))
                    break
        # Keys and unknown models once per model is enough.
        endpoint = model.endpoints[0]
        base = body_for(endpoint, name, PROMPT, _images_for(model), {"n": model.n.min})
        add("no-key", endpoint, model, base, key="none", expect=auth_expect(catalog, "no_api_key", "no Authorization"))
        add("invalid-key", endpoint, model, base, key="invalid", expect=auth_expect(catalog, "invalid_api_key", "a key nobody issued"))
        if has_other_region_key:
            add("other-region-key", endpoint, model, base, key="other_region",
                expect=auth_expect(catalog, "invalid_api_key", "a key of another region"))
        unknown = copy.deepcopy(base)
        unknown["model"] = name + UNKNOWN_MODEL_SUFFIX
        add("unknown-model", endpoint, model, unknown)
    return cases


# A body that is not JSON, sent as application/json (observation body-not-json).
NOT_JSON = b'{"model": "qwen-image-plus", "input": '
SSE = {"X-DashScope-SSE": "enable"}
OSS_KEY = "oss://dashscope-instant/contract/no-such-upload.png"


def observed_refusals(catalog: ds.Catalog, models: list[str], region: str, *, billed: bool = False) -> list[Case]:
    """Requests the service was seen to refuse in its own words (the error table's entries that
    cite an observation, and the rest of the table a request can reach), all free: on every
    generation route a wrong method, a body that is not JSON, no model, no input, a made-up model
    and the wrong async header; for each model the routes that do not serve it, n it cannot make,
    message counts, an image that is not a URL, a size it refuses (also asked as a stream); keys.
    On a `billed` target, nothing a server might accept after all (an oss:// key it cannot read)."""
    served = [m for m in (catalog.model(name) for name in models) if m is not None and region in m.regions]
    everyone = served + [m for m in catalog.models.values() if region in m.regions and m not in served]
    cases: list[Case] = []

    def add(case_id: str, endpoint: str, model: ds.Model, body: Any, headers: dict[str, str] | None = None,
            expect: Expect | None = None, **extra: Any) -> None:
        headers = headers_for(catalog, endpoint) if headers is None else headers
        expect = expect or oracle(catalog, endpoint, body, headers, region)
        assert not expect.accepted, f"{case_id}: the oracle accepts it"
        expect.model = expect.model or model.name
        cases.append(Case(f"{endpoint}/{case_id}", endpoint, model.name, body, headers, expect, **extra))

    def base(endpoint: str, model: ds.Model, images: list[str] | None = None, **params: Any) -> dict[str, Any]:
        return body_for(endpoint, model.name, PROMPT, _images_for(model) if images is None else images, {"n": model.n.min, **params})

    for endpoint in catalog.generation_endpoints:
        model = next((m for m in everyone if endpoint in m.endpoints), None)
        if model is None:
            continue
        body = base(endpoint, model)
        add("wrong-method", endpoint, model, None, expect=error_expect(catalog, "method_not_supported", "(method)", "GET on a POST API"),
            method="GET", facts={"method": "GET"})
        add("body-not-json", endpoint, model, None, {**headers_for(catalog, endpoint), "Content-Type": "application/json"},
            expect=error_expect(catalog, "body_invalid", "(body)", "a body that is not JSON"), raw=NOT_JSON)
        add("missing-model", endpoint, model, {k: v for k, v in body.items() if k != "model"})
        add("missing-input", endpoint, model, {k: v for k, v in body.items() if k != "input"})
        add("unknown-model", endpoint, model, {**body, "model": model.name + UNKNOWN_MODEL_SUFFIX})
        async_header = catalog.endpoints[endpoint].async_header
        add("wrong-async-header", endpoint, model, body, {} if async_header == "required" else dict(ASYNC))
    first = next(iter(catalog.generation_endpoints), None)
    if first is not None and everyone:  # a route nobody serves: the gateway's url error too
        model = next((m for m in everyone if first in m.endpoints), everyone[0])
        add("unknown-route", first, model, base(first, model), expect=error_expect(catalog, "url_error", "(path)", "a route nobody serves"),
            path="/services/aigc/contract-no-such-route/generation")
    task_cancel = catalog.endpoints.get("task-cancel")
    if task_cancel is not None and everyone:
        cases.append(Case("task-cancel/wrong-method", "task-cancel", everyone[0].name, None, {},
                          error_expect(catalog, "method_not_supported", "(method)", "GET on a POST API"), method="GET",
                          facts={"method": "GET"}))
    for model in served:
        for other in catalog.generation_endpoints:
            if other not in model.endpoints:  # url error, or a synchronous-only model asked for a task (403)
                add(f"{model.name}-on-{other}", other, model, base(other, model, [sample_image(512, 512)] * max(1, model.input_images.min)))
        endpoint = model.endpoints[0]
        if model.n.max == 1:
            add(f"{model.name}-n-2", endpoint, model, base(endpoint, model, n=2))
        messages = next((e for e in model.endpoints if not ds.paths.is_field(catalog.endpoints[e].prompt_path or "")), None)
        if messages is not None:
            body = base(messages, model)
            add(f"{model.name}-two-messages", messages, model, {**body, "input": {"messages": body["input"]["messages"] * 2}})
            add(f"{model.name}-no-messages", messages, model, {**body, "input": {"messages": []}})
        with_images = next((e for e in model.endpoints if catalog.endpoints[e].images_path), None)
        if with_images is not None and model.input_images.max:
            not_urls = ["not a url"] * max(1, model.input_images.min)
            add(f"{model.name}-image-not-a-url", with_images, model, base(with_images, model, not_urls))
            # An oss:// key without X-DashScope-OssResourceResolve: the service fetches it as a URL.
            if not billed and not any("oss" in c.id for c in cases):
                keys = [OSS_KEY] * max(1, model.input_images.min)
                add(f"{model.name}-oss-unresolved", with_images, model, base(with_images, model, keys),
                    expect=error_expect(catalog, "data_inspection_download", "input image 1", "an oss:// key, not resolved"))
        for size in _invalid_sizes(model):
            body = base(endpoint, model, size=size)
            if oracle(catalog, endpoint, body, headers_for(catalog, endpoint), region).message is not None:
                add(f"{model.name}-size-{size}", endpoint, model, body)
                if catalog.endpoints[endpoint].is_sync_generation:  # a validation error asked as a stream
                    add(f"{model.name}-size-{size}-stream", endpoint, model, body, {**headers_for(catalog, endpoint), **SSE},
                        facts={"stream": True})
                break
    if served:
        model = served[0]
        endpoint = model.endpoints[0]
        body = base(endpoint, model)
        add("no-key", endpoint, model, body, expect=auth_expect(catalog, "no_api_key", "no Authorization"), key="none")
        add("invalid-key", endpoint, model, body, expect=auth_expect(catalog, "invalid_api_key", "a key nobody issued"), key="invalid")
    return cases
