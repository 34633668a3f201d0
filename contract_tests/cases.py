"""The deterministic part of the suite: for every model and endpoint, requests at the edges of
each catalog rule (valid and broken), derived from the catalog, so that every documented
difference between two API versions is requested at least once."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import dashscope_schemas as ds

from .checks import Expect
from .requests import UNKNOWN_MODEL_SUFFIX, auth_expect, body_for, headers_for, oracle, sample_image

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
