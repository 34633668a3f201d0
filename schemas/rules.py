"""Request rules of the catalog: is a request valid for its model, and if not, which rule and error.

The rules are data in catalog.json (ranges, size rules, image limits, cross-field rules); this
module is the one place that reads them. Checks run in the order the service applies them:
gateway checks first (async header, model, endpoint), then the schema, then the model's rules.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .paths import get_path, items_at, values_at
from .sizes import Size, parse_size
from .validation import validate

if TYPE_CHECKING:  # the catalog calls these rules: only its types are needed here
    from .catalog import Catalog, Endpoint, ImageLimits, Model, TextLimit

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S)
_REMOTE_SCHEMES = ("http://", "https://", "oss://")
_MIME_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "bmp": "bmp", "x-ms-bmp": "bmp", "tiff": "tiff",
                 "tif": "tiff", "webp": "webp", "gif": "gif"}


@dataclass(frozen=True)
class Violation:
    rule: str     # which rule, e.g. "n-range", "size-rule", "model-exists"
    path: str     # which field, e.g. "parameters.n" ("" for the request as a whole)
    reason: str   # why, in words
    error: str    # key of the error in error-codes.json
    status: int   # HTTP status the service answers
    code: str     # DashScope error code
    message: str  # the message the service sends


@dataclass(frozen=True)
class InputImage:
    ref: str                   # as given: URL, oss:// key or data URI
    data: bytes | None = None  # decoded bytes of a data URI
    mime: str | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """A valid request, normalised: defaults filled, texts truncated, parameters the model ignores dropped."""

    model: Model
    endpoint: str
    n: int
    size: Size | None  # as requested (before rounding); None when unset or not settable
    orig_prompt: str
    prompt: str        # truncated to the model's limit
    negative_prompt: str | None
    images: tuple[InputImage, ...]
    seed: int | None
    prompt_extend: bool
    watermark: bool


@dataclass(frozen=True)
class Verdict:
    violations: tuple[Violation, ...]
    request: GenerationRequest | None

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def error(self) -> Violation | None:
        """The violation the service reports (the first one found)."""
        return self.violations[0] if self.violations else None


class _Context:
    def __init__(self, catalog: Catalog, endpoint: str, body: Any, headers: Mapping[str, str], region: str | None):
        self.catalog = catalog
        self.endpoint_name = endpoint
        self.endpoint: Endpoint = catalog.endpoints[endpoint]
        self.body = body
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.region = region
        self.model: Model | None = None
        self.images: list[InputImage] = []
        self.asks_async = self.headers.get("x-dashscope-async", "").lower() == "enable"
        self.texts_and_images: tuple[Any, Any, list[Any]] | None = None

    def violation(self, rule: str, path: str, reason: str, error: str = "invalid_parameter", said: str | None = None) -> Violation:
        """A broken rule. Entries of the error table with a fixed text answer with it; the generic
        InvalidParameter one names nothing, so the fake says which field and which limit, short,
        like the service's own texts ("parameters.n must be at most 6 for ...")."""
        wire = self.catalog.error(error)
        message = wire["message"]
        if error == "invalid_parameter":
            message = said or (f"{path} {reason}" if path else reason)
        return Violation(rule, path, reason, error, wire["status"], wire["code"], message)


def _texts_and_images(ctx: _Context) -> tuple[Any, Any, list[Any]]:
    """(prompt, negative_prompt, image refs) wherever this endpoint keeps them. Images only where
    the endpoint declares them (so the schema has checked them): text-to-image declares none, and
    whatever a body puts at input.images there is not an image. Read once per request (the
    model rules and the normalised request both ask)."""
    if ctx.texts_and_images is None:
        ctx.texts_and_images = _read_texts_and_images(ctx)
    return ctx.texts_and_images


def _read_texts_and_images(ctx: _Context) -> tuple[Any, Any, list[Any]]:
    endpoint, body = ctx.endpoint, ctx.body
    assert endpoint.prompt_path is not None and endpoint.negative_prompt_path is not None
    prompt = next(iter(values_at(body, endpoint.prompt_path)), None)
    images = items_at(body, endpoint.images_path) if endpoint.images_path else []
    negative = get_path(body, endpoint.negative_prompt_path)
    if negative is None:
        negative = get_path(body, "parameters.negative_prompt")
    return prompt, negative, images


# --- the checks, in the service's order --------------------------------------------------------


def check_async_header(ctx: _Context) -> list[Violation]:
    """The gateway's first check: an async-only endpoint needs X-DashScope-Async: enable, a
    sync-only one refuses it (403 either way; observation async-header-on-sync)."""
    if ctx.endpoint.async_header == "required" and not ctx.asks_async:
        return [ctx.violation("async-header", "X-DashScope-Async", "this endpoint is asynchronous only", "sync_not_supported")]
    if ctx.endpoint.async_header == "refused" and ctx.asks_async:
        return [ctx.violation("async-header", "X-DashScope-Async", "this endpoint is synchronous only", "async_not_supported")]
    return []


def check_model_exists(ctx: _Context) -> list[Violation]:
    if not isinstance(ctx.body, dict):
        return [ctx.violation("body-object", "", "the request body must be a JSON object", "body_invalid")]
    name = ctx.body.get("model")
    if name is None or name == "":
        return [ctx.violation("model-required", "model", "is required", "missing_model")]
    if not isinstance(name, str):
        return [ctx.violation("model-required", "model", "must be a string")]
    model = ctx.catalog.model(name)
    if model is None or (ctx.region is not None and ctx.region not in model.regions):
        return [ctx.violation("model-exists", "model", f"no model named {name!r} here", "model_not_exist")]
    ctx.model = model
    return []


def check_endpoint(ctx: _Context) -> list[Violation]:
    assert ctx.model is not None
    if ctx.endpoint_name not in ctx.model.endpoints:
        # A synchronous-only model asked for a task is refused as an async call (403); any other
        # model on a route that does not serve it is a "url error" (observations
        # async-header-on-sync, url-error-message).
        error = "async_not_supported" if ctx.asks_async and not ctx.model.is_async else "url_error"
        return [ctx.violation("model-endpoint", "model",
                              f"{ctx.model.name} is served by {', '.join(ctx.model.endpoints)}, not {ctx.endpoint_name}", error)]
    return []


def check_schema(ctx: _Context) -> list[Violation]:
    assert ctx.endpoint.request_schema is not None
    issues = validate(ctx.body, ctx.endpoint.request_schema, ctx.catalog.profile)
    return [ctx.violation("schema", issue.path, issue.reason, issue.error or "invalid_parameter", issue.said) for issue in issues[:1]]


def check_model_rules(ctx: _Context) -> list[Violation]:
    model, body = ctx.model, ctx.body
    assert model is not None
    found: list[Violation] = []
    params = body.get("parameters") or {}

    n = params.get("n")
    if n is not None and not model.n.min <= n <= model.n.max:
        # A model that makes one image says so in the service's words (observation n-must-be-1).
        found.append(ctx.violation("n-range", "parameters.n", f"must be between {model.n.min} and {model.n.max} for {model.name}",
                                   "n_must_be_1" if model.n.max == 1 else "invalid_parameter"))

    if "size" in model.parameters and "size" in params:
        size = parse_size(params["size"])
        assert size is not None  # the schema's pattern guarantees it
        why = model.size_rule.violation(size)
        if why:
            found.append(ctx.violation("size-rule", "parameters.size", f"{why} for {model.name}",
                                       said=model.size_rule.service_message(size)))

    _, _, images = _texts_and_images(ctx)
    limits = model.input_images
    if not limits.min <= len(images) <= limits.max:
        if limits.max == 0:
            said = f"{model.name} takes no input images"
        elif len(images) > limits.max:
            said = f"at most {limits.max} input images for {model.name}, not {len(images)}"
        else:
            said = f"at least {limits.min} input image{'s' if limits.min > 1 else ''} for {model.name}"
        found.append(ctx.violation("image-count", ctx.endpoint.images_path or "input", said, said=said))
    for index, ref in enumerate(images):
        found.extend(_check_image_ref(ctx, index, ref, limits))

    for rule in model.cross_rules:
        if get_path(body, rule.if_present) is not None:
            value = get_path(body, rule.require_path)
            if value is None and rule.default_from == "n":
                value = model.default_n
            if value != rule.require_equals:
                found.append(ctx.violation(rule.id, rule.if_present, rule.reason, rule.error))
    return found


def _check_image_ref(ctx: _Context, index: int, ref: str, limits: ImageLimits) -> list[Violation]:
    path = f"input image {index + 1}"
    if ref.startswith(_REMOTE_SCHEMES):
        ctx.images.append(InputImage(ref))
        return []
    match = _DATA_URI.match(ref)
    if not match:
        return [ctx.violation("image-url", path, "is not an http(s) URL, an oss:// key or a base64 data URI", "image_url_invalid")]
    mime = (match.group("mime") or "").lower()
    fmt = _MIME_FORMATS.get(mime.partition("/")[2])
    if not mime.startswith("image/") or fmt is None or not any(_MIME_FORMATS.get(f) == fmt for f in limits.formats):
        return [ctx.violation("image-format", path, f"must be one of {', '.join(limits.formats)}, not {mime[:40] or 'untyped'}")]
    payload = match.group("data")
    if len(payload) * 3 // 4 > limits.max_bytes + 3:
        return [ctx.violation("image-bytes", path, f"is larger than {limits.max_bytes} bytes", "image_too_large")]
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return [ctx.violation("image-base64", path, "is not valid base64")]
    if len(data) > limits.max_bytes:
        return [ctx.violation("image-bytes", path, f"is larger than {limits.max_bytes} bytes", "image_too_large")]
    ctx.images.append(InputImage(ref, data, mime))
    return []


def _literal(text: str, any_case: bool = False) -> str:
    """`text` as an ECMA-262 regex (escaping only syntax characters, which unicode-mode engines require)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if any_case and c.isalpha() else "\\" + c if c in "\\^$.*+?()[]{}|/" else c
                   for c in text)


_B64 = "[A-Za-z0-9+/]"
# What base64.b64decode(validate=True) decodes: whole quanta (any "=" after them is ignored), or
# a last quantum of 2 or 3 characters padded to 4.
_B64_PATTERN = f"(({_B64}{{4}})+=*|({_B64}{{4}})*({_B64}{{2}}==|{_B64}{{3}}=))?"


def image_ref_pattern(formats: tuple[str, ...]) -> str:
    """An ECMA-262 regex (for a JSON Schema `pattern`) of the references _check_image_ref lets
    through for a model taking `formats`: an http(s) URL or oss:// key, or a base64 data URI of
    one of those formats (its MIME type in any case). Not in it: that the data decodes to an image
    of at most max_bytes, and that an oss:// key is one this account uploaded."""
    wanted = {_MIME_FORMATS.get(f) for f in formats}
    subtypes = sorted(s for s, fmt in _MIME_FORMATS.items() if fmt in wanted)
    remote = "|".join(_literal(scheme) for scheme in _REMOTE_SCHEMES)
    mime = _literal("image/", any_case=True) + "(" + "|".join(_literal(s, any_case=True) for s in subtypes) + ")"
    return f"^({remote}|data:{mime}(;[^;,]*)*;base64,{_B64_PATTERN}$)"


CHECKS: tuple[Callable[[_Context], list[Violation]], ...] = (
    check_async_header, check_model_exists, check_endpoint, check_schema, check_model_rules,
)


def _truncate(text: Any, limit: TextLimit) -> Any:
    return text[: limit.max_chars] if isinstance(text, str) and limit.truncate else text


def _normalise(ctx: _Context) -> GenerationRequest:
    model = ctx.model
    assert model is not None
    params = ctx.body.get("parameters") or {}
    prompt, negative, _ = _texts_and_images(ctx)
    applies = model.parameters.__contains__
    return GenerationRequest(
        model=model,
        endpoint=ctx.endpoint_name,
        n=int(params.get("n", model.default_n)),  # JSON Schema counts 2.0 as an integer
        size=parse_size(params.get("size")) if applies("size") else None,
        orig_prompt=prompt,
        prompt=_truncate(prompt, model.prompt),
        negative_prompt=_truncate(negative, model.negative_prompt) if applies("negative_prompt") else None,
        images=tuple(ctx.images),
        seed=int(params["seed"]) if applies("seed") and params.get("seed") is not None else None,
        prompt_extend=bool(params.get("prompt_extend", True)) if applies("prompt_extend") else False,
        watermark=bool(params.get("watermark", False)) if applies("watermark") else False,
    )


def check_request(catalog: Catalog, endpoint: str, body: Any, headers: Mapping[str, str],
                  region: str | None = None) -> Verdict:
    """Check one request to `endpoint` (a catalog endpoint name) against the catalog's rules."""
    if endpoint not in catalog.generation_endpoints:
        raise KeyError(f"unknown endpoint {endpoint!r}; known: {', '.join(catalog.generation_endpoints)}")
    ctx = _Context(catalog, endpoint, body, headers, region)
    for check in CHECKS:
        violations = check(ctx)
        if violations:
            return Verdict(tuple(violations), None)
    return Verdict((), _normalise(ctx))
