"""Building requests of each endpoint, and the oracle: what the docs (schemas + catalog) say
the answer to a request must be. The expectation always comes from the source of truth, never
from the server under test."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import Any

import dashscope_schemas as ds

from .checks import Expect

ASYNC = {"X-DashScope-Async": "enable"}
# The suite's own made-up model names end so: a model nobody serves, which must answer Model not exist.
UNKNOWN_MODEL_SUFFIX = "-nonexistent"


@lru_cache(maxsize=16)
def sample_image(width: int, height: int) -> str:
    """A small real PNG as a data URI: self-contained, so the real service needs no download."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), ((width * 7) % 256, (height * 3) % 256, 120)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


IMAGE_SIZES = ((640, 480), (480, 640), (512, 512))


def body_for(endpoint: str, model: str, prompt: str, images: list[str], parameters: dict[str, Any]) -> dict[str, Any]:
    """A request body of a generation endpoint, built from the catalog's template and paths (the
    images are left out where the endpoint takes none)."""
    return ds.load_catalog().endpoints[endpoint].body(model, prompt, images, parameters)


def headers_for(catalog: ds.Catalog, endpoint: str) -> dict[str, str]:
    return dict(ASYNC) if catalog.endpoints[endpoint].async_header == "required" else {}


def image_size(data: bytes | None) -> tuple[int, int] | None:
    """The one image-size reader of the suite: width and height of encoded image bytes (a data
    URI's, as the rules decoded it); None when there are none (a URL) or they are unreadable."""
    if not data:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - an unreadable input has no known size
        return None


def oracle(catalog: ds.Catalog, endpoint: str, body: Any, headers: dict[str, str], region: str) -> Expect:
    verdict = catalog.check_request(endpoint, body, headers, region)
    if verdict.error:
        v = verdict.error
        return Expect(False, v.status, v.code, v.rule, v.path, v.reason, error=v.error, model=verdict_model(body),
                      message=service_text(v))
    request = verdict.request
    assert request is not None  # a request without violations is always normalised
    last = image_size(request.images[-1].data) if request.images else None
    size = ds.output_size(request.model.size_rule, request.size, last)
    # Without a known input image (none given) the default of an aspect-following rule is 1:1.
    return Expect(True, 200, size=size, images=request.n, model=request.model.name)


def verdict_model(body: Any) -> str | None:
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def service_text(violation: ds.rules.Violation) -> str | None:
    """A refusal's text when a rule gives it in the service's own words (a size a model refuses:
    observation size-messages); None when the error entry's text is the one to expect, or when
    the generic InvalidParameter entry leaves the words to the server."""
    if violation.error != "invalid_parameter":
        return None
    own = f"{violation.path} {violation.reason}" if violation.path else violation.reason
    return violation.message if violation.message != own else None


def error_expect(catalog: ds.Catalog, error: str, field: str, why: str, model: str | None = None) -> Expect:
    """The answer the error table gives for a refusal the rules cannot see (a key, a method, a body)."""
    wire = catalog.error(error)
    return Expect(False, wire["status"], wire["code"], error, field, why, error=error, model=model)


def auth_expect(catalog: ds.Catalog, error: str, why: str) -> Expect:
    return error_expect(catalog, error, "Authorization", why)
