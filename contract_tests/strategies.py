"""Hypothesis strategies for requests, from the request schemas (hypothesis-jsonschema, for the
optional parameters) and small composites for the catalog's cross-field rules (model, n, size,
images), so that valid requests are valid by construction and invalid ones break one rule.

Against a real (billed) target the strategies prefer the cheapest valid choices: the smallest
n, no explicit size, the fewest input images, short prompts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import dashscope_schemas as ds
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from .requests import IMAGE_SIZES, body_for, headers_for, sample_image

KNOWN_PARAMETERS = ("n", "size", "negative_prompt", "prompt_extend", "watermark", "seed")
PROMPT_ALPHABET = st.characters(codec="utf-8", categories=("L", "N", "P", "Zs"))


@cache
def _parameters_schema(profile: str, endpoint: str) -> dict:
    catalog = ds.load_catalog(profile)
    schema = catalog.endpoints[endpoint].request_schema
    assert schema is not None  # every generation endpoint has a request schema
    bundled = ds.load_schema(schema, profile)
    return {"$defs": bundled["$defs"], **bundled["properties"]["parameters"]}


def _fixed_sizes(rule: ds.sizes.FixedSizes) -> st.SearchStrategy[str]:
    return st.sampled_from(rule.sizes)


def _per_side_sizes(rule: ds.sizes.PerSide) -> st.SearchStrategy[str]:
    side = st.integers(rule.min, rule.max)
    return st.builds(lambda w, h: f"{w}*{h}", side, side)


def _total_pixel_sizes(rule: ds.sizes.TotalPixels) -> st.SearchStrategy[str]:
    aspect = rule.aspect or ds.sizes.AspectRange(0.25, 4.0)

    @st.composite
    def total(draw) -> str:
        pixels = draw(st.integers(rule.min_pixels, rule.max_pixels))
        ratio = draw(st.floats(max(aspect.min, 0.25), min(aspect.max, 4.0)))
        width = max(1, int(math.sqrt(pixels * ratio)))
        size = (width, max(1, pixels // width))
        assume(rule.violation(size) is None)
        return ds.format_size(size)

    return total()


# The sizes each kind of rule accepts, one function per kind (a kind without one takes no size); each
# function takes a rule of exactly its key's type, which a dict's value type cannot say.
SIZE_STRATEGIES: dict[type[ds.SizeRule], Callable[[Any], st.SearchStrategy[str]]] = {
    ds.sizes.FixedSizes: _fixed_sizes, ds.sizes.PerSide: _per_side_sizes, ds.sizes.TotalPixels: _total_pixel_sizes}


def size_for(rule: ds.SizeRule, cheap: bool) -> st.SearchStrategy[str | None]:
    sizes = SIZE_STRATEGIES.get(type(rule))
    if cheap or sizes is None:
        return st.none()
    return st.none() | sizes(rule)


@st.composite
def valid_request(draw, profile: str, models: tuple[str, ...], region: str, cheap: bool):
    """(endpoint, body, headers) of a request the docs say must be accepted. Arguments are plain
    values (not the catalog) so that Hypothesis' reports stay short."""
    catalog = ds.load_catalog(profile)
    name = draw(st.sampled_from([m for m in models if (entry := catalog.model(m)) and region in entry.regions]), label="model")
    model = catalog.models[name]
    endpoint = draw(st.sampled_from(model.endpoints), label="endpoint")
    drawn = draw(from_schema(_parameters_schema(catalog.profile, endpoint)), label="schema parameters")
    parameters = {k: v for k, v in drawn.items() if k in KNOWN_PARAMETERS and k not in ("n", "size")}
    if cheap:
        parameters.pop("negative_prompt", None)
    parameters["n"] = model.n.min if cheap else draw(st.integers(model.n.min, model.n.max), label="n")
    size = draw(size_for(model.size_rule, cheap), label="size")
    if size is not None:
        parameters["size"] = size
    if not cheap and draw(st.booleans(), label="an unknown parameter"):
        parameters["contract_probe"] = draw(st.integers() | st.text(max_size=5))
    limit = model.prompt.max_chars
    prompt = draw(st.text(PROMPT_ALPHABET, min_size=1, max_size=40 if cheap else limit + 100), label="prompt")
    assume(prompt.strip())
    limits = model.input_images
    count = limits.min if cheap else draw(st.integers(limits.min, limits.max), label="images")
    images = [sample_image(*draw(st.sampled_from(IMAGE_SIZES))) for _ in range(count)]
    body = body_for(endpoint, name, prompt, images, parameters)
    for rule in model.cross_rules:  # e.g. 2025-12: size only with n = 1 (catalog data, not code)
        if ds.get_path(body, rule.if_present) is not None:
            _set(body, rule.require_path, rule.require_equals)
    return endpoint, body, headers_for(catalog, endpoint)


def _prompt_of(catalog: ds.Catalog, endpoint: str, body: dict) -> str:
    return next(iter(ds.values_at(body, catalog.endpoints[endpoint].prompt_path or "")), "a cat")


def _set(body: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = body
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


MUTATIONS = ("n-above-max", "n-zero", "n-as-string", "size-outside-rule", "size-not-w-x-h", "one-image-too-many",
             "seed-out-of-range", "unknown-model", "wrong-endpoint", "missing-async-header", "missing-prompt", "two-texts")


@st.composite
def invalid_request(draw, profile: str, models: tuple[str, ...], region: str):
    """(endpoint, body, headers, mutation) of a valid request with exactly one rule broken."""
    catalog = ds.load_catalog(profile)
    endpoint, body, headers = draw(valid_request(profile, models, region, cheap=True))
    model = catalog.models[body["model"]]  # valid_request drew a model of the catalog
    mutation = draw(st.sampled_from(MUTATIONS), label="mutation")
    params = body["parameters"]
    if mutation == "n-above-max":
        params["n"] = draw(st.integers(model.n.max + 1, 1000))
    elif mutation == "n-zero":
        params["n"] = draw(st.integers(-5, 0))
    elif mutation == "n-as-string":
        params["n"] = str(params["n"])
    elif mutation == "size-outside-rule":
        assume("size" in model.parameters)
        width, height = draw(st.integers(1, 9999)), draw(st.integers(1, 9999))
        assume(ds.size_violation(model.size_rule, (width, height)) is not None)
        params["size"] = f"{width}*{height}"
    elif mutation == "size-not-w-x-h":
        params["size"] = draw(st.sampled_from(["1024x1024", "1024", "*", "1024*", "big"]))
    elif mutation == "one-image-too-many":
        images_path = catalog.endpoints[endpoint].images_path
        assume(images_path is not None)  # an endpoint that takes no images has no "too many"
        assert images_path is not None
        images = ds.items_at(body, images_path)
        extra = [sample_image(*IMAGE_SIZES[0])] * (model.input_images.max + 1 - len(images))
        body = body_for(endpoint, model.name, _prompt_of(catalog, endpoint, body), images + extra, params)
    elif mutation == "seed-out-of-range":
        params["seed"] = draw(st.integers(2**31, 2**40) | st.integers(-(2**40), -1))
    elif mutation == "unknown-model":
        body["model"] = body["model"] + draw(st.sampled_from(["-x", "-turbo-9000", "2"]))
        assume(catalog.model(body["model"]) is None)
    elif mutation == "wrong-endpoint":
        others = [e for e in catalog.generation_endpoints if e not in model.endpoints]
        assume(others)
        endpoint = draw(st.sampled_from(others))
        body = body_for(endpoint, model.name, "a cat", [sample_image(*IMAGE_SIZES[0])], {"n": 1})
        headers = headers_for(catalog, endpoint)
    elif mutation == "missing-async-header":
        assume(headers)
        headers = {}
    elif mutation == "missing-prompt":  # where the prompt is a field of its own
        prompt_path = catalog.endpoints[endpoint].prompt_path or ""
        assume(ds.paths.is_field(prompt_path))
        ds.paths.remove_at(body, prompt_path)
    elif mutation == "two-texts":  # where the prompt is one item of a content list
        prompt_path = catalog.endpoints[endpoint].prompt_path or ""
        assume(not ds.paths.is_field(prompt_path))
        ds.paths.put_at(body, prompt_path, ["another"])
    return endpoint, body, headers, mutation
