"""Recorded runs (cassettes), offline: load one and re-check it against the schemas and catalog of
any API profile without the server (recording_diff.py compares two recordings by shape).

A cassette is the file the suite's Recorder writes (`<record dir>/cassette.jsonl`): one JSON
exchange per line, keys already masked. Nothing here talks to the network; checks that need it
(downloading result images) are skipped. Everything written or returned for people is passed
through the key masker (exchange.mask) once more, so a key that slipped past the recorder still never leaves.

    exchanges = load("fixtures/recordings/fake-current")
    reporter = recheck(exchanges, "2025-12")          # Reporter: .findings, .checks, .write(dir, meta)
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dashscope_schemas as ds

from .checks import ALWAYS, Context, Expect, run_checks
from .exchange import Exchange, mask
from .report import Reporter
from .requests import UNKNOWN_MODEL_SUFFIX, image_size, oracle
from .settings import region_of_base_url

CASSETTE = "cassette.jsonl"
DEFAULT_REGION = "cn-beijing"
# Checks that only need the recorded exchange (and the catalog): what recheck runs.
OFFLINE_CHECKS = ALWAYS + ("valid_request_accepted", "invalid_request_rejected", "usage_agrees_with_results",
                           "image_size_obeys_rules", "status_moves_forward")
# Checks that need the network (they download result images): never run offline.
NETWORK_CHECKS = ("images_download_as_png",)

_TASK_PATH = re.compile(r"/tasks/([^/?#]+)(?:/cancel)?/?$")
_TERMINAL_UNKNOWN = "UNKNOWN"  # what expired tasks and other accounts' tasks show: not a step of a task's life


def cassette_path(path: str | Path) -> Path:
    """The cassette file itself: `path`, or `path`/cassette.jsonl (or the one *.jsonl) of a directory."""
    path = Path(path)
    if path.is_dir():
        if (path / CASSETTE).is_file():
            return path / CASSETTE
        found = sorted(path.glob("*.jsonl"))
        if len(found) == 1:
            return found[0]
        raise FileNotFoundError(f"{path} holds no {CASSETTE}" + (f" (and {len(found)} other .jsonl files)" if found else ""))
    if not path.is_file():
        raise FileNotFoundError(f"no recording at {path}")
    return path


_FIELDS = {f.name for f in dataclasses.fields(Exchange)}


def load(path: str | Path) -> list[Exchange]:
    """The exchanges of a recording, in the order they were made (a cassette.jsonl or its directory)."""
    file = cassette_path(path)
    exchanges = []
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{file}:{number}: not a JSON line: {exc}") from None
            if not isinstance(data, dict) or not {"method", "url", "endpoint", "status"} <= set(data):
                raise ValueError(f"{file}:{number}: not a recorded exchange")
            # Tolerate fields a newer recorder added; missing optional ones take their defaults.
            record = {k: v for k, v in data.items() if k in _FIELDS}
            record.setdefault("request_headers", {})
            record.setdefault("request_body", None)
            record.setdefault("response_headers", {})
            record.setdefault("response_body", None)
            exchanges.append(Exchange.from_record(record))
    return exchanges


def exchanges_of(source: str | Path | Iterable[Exchange]) -> list[Exchange]:
    return load(source) if isinstance(source, (str, Path)) else list(source)


# --- small readers of a recorded exchange --------------------------------------------------------


def header_of(headers: dict[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def has_key(exchange: Exchange) -> bool:
    return bool(header_of(exchange.request_headers, "authorization"))


def throttled(exchange: Exchange) -> bool:
    return exchange.status == 429 and str(exchange.code or "").startswith("Throttling")


def task_id_created(exchange: Exchange) -> str | None:
    output = exchange.json.get("output") if isinstance(exchange.json, dict) else None
    task_id = output.get("task_id") if isinstance(output, dict) else None
    return task_id if isinstance(task_id, str) else None


def task_id_in_url(exchange: Exchange) -> str | None:
    found = _TASK_PATH.search(urlsplit(exchange.url).path)
    return found.group(1) if found else None


def _task_status(exchange: Exchange) -> str | None:
    output = exchange.json.get("output") if isinstance(exchange.json, dict) else None
    status = output.get("task_status") if isinstance(output, dict) else None
    return status if isinstance(status, str) else None


def model_of(exchange: Exchange) -> str | None:
    if exchange.model:
        return exchange.model
    body = exchange.request_body
    return body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None


def region_of(exchange: Exchange, catalog: ds.Catalog) -> str:
    """The region a recorded request went to: the fake's path prefix, a real regional domain, else cn-beijing."""
    try:
        region, _ = region_of_base_url(exchange.url, catalog)
    except ValueError:
        region = None
    return region or DEFAULT_REGION


def _in_scope(model: str) -> bool:
    return any(ds.load_catalog(profile).model(model) is not None for profile in ds.profile_names())


def expectation(catalog: ds.Catalog, exchange: Exchange, region: str | None = None) -> Expect | None:
    """What the profile says the answer to a recorded generation request must be (None: no judgement).

    The oracle of the live suite, with the recorded X-DashScope-Async header and region. The output
    size is worked out from the last input image's own bytes (a data URI); when the last image is a
    URL its dimensions are unknown offline, and the size is not judged.
    """
    if exchange.endpoint not in catalog.generation_endpoints or exchange.request_body is None:
        return None
    model = model_of(exchange)
    if exchange.status == 200 and model and not model.endswith(UNKNOWN_MODEL_SUFFIX) and not _in_scope(model):
        # A model the service served that no profile of the kit describes (the platform has many
        # more than the image models in scope): nothing in the docs judges the request, so only
        # its answer's shape is checked. A model of another profile is judged: that is drift.
        return None
    headers = dict(exchange.request_headers or {})
    region = region or region_of(exchange, catalog)
    try:
        expect = oracle(catalog, exchange.endpoint, exchange.request_body, headers, region)
        if expect.accepted and expect.size is not None:
            request = catalog.check_request(exchange.endpoint, exchange.request_body, headers, region).request
            if request is not None and request.images:
                dims = image_size(request.images[-1].data)
                expect.size = ds.output_size(request.model.size_rule, request.size, dims) if dims else None
    except Exception:  # noqa: BLE001 - a body the rules cannot even read: judged by the ALWAYS checks only
        return None
    return expect


# --- re-checking a recording offline -------------------------------------------------------------


def recheck(exchanges: str | Path | Iterable[Exchange], profile: str = ds.DEFAULT_PROFILE, *,
            region: str | None = None) -> Reporter:
    """Re-check a recorded run against the schemas and catalog of `profile`, without the server.

    Every exchange gets the ALWAYS checks. A generation request whose body is recorded (and was
    sent with a key and not throttled) also gets valid_request_accepted / invalid_request_rejected
    against the profile's oracle, usage_agrees_with_results, and, for the synchronous endpoint,
    image_size_obeys_rules. Task polls get usage_agrees_with_results (with the n of the request
    that created the task, when recorded) and status_moves_forward (UNKNOWN answers, which expiry
    and other accounts show, left out of a task's history). Requests without a key, any 401, and
    throttled 429s are judged by the ALWAYS checks only: with keys masked, offline nobody can tell
    a valid key from an invalid one. `region` overrides the region read from each URL.
    """
    exchanges = exchanges_of(exchanges)
    catalog = ds.load_catalog(profile)
    reporter = Reporter(mask=mask)
    reporter.exchanges = len(exchanges)
    task_expect: dict[str, Expect | None] = {}
    task_status: dict[str, str] = {}

    for number, exchange in enumerate(exchanges, 1):
        names: list[str] = list(ALWAYS)
        expect: Expect | None = None
        facts: dict[str, Any] = {}
        judged = has_key(exchange) and exchange.status != 401 and not throttled(exchange)
        endpoint = catalog.endpoints.get(exchange.endpoint)
        if judged and endpoint is not None and endpoint.generates:
            expect = expectation(catalog, exchange, region)
            if expect is not None:
                names += ["valid_request_accepted", "invalid_request_rejected"]
            names.append("usage_agrees_with_results")
            if endpoint.is_sync_generation:
                names.append("image_size_obeys_rules")
            task_id = task_id_created(exchange) if exchange.status == 200 else None
            if task_id:
                task_expect[task_id] = expect if expect is not None and expect.accepted else None
        elif judged and exchange.endpoint == "task-query" and exchange.status == 200:
            task_id = task_id_in_url(exchange)
            expect = task_expect.get(task_id) if task_id else None
            names.append("usage_agrees_with_results")
            status = _task_status(exchange)
            if task_id and status and status != _TERMINAL_UNKNOWN:
                previous = task_status.get(task_id)
                task_status[task_id] = status
                if previous is not None:
                    names.append("status_moves_forward")
                    facts["statuses"] = [previous, status]
        run_checks(reporter, Context(catalog, None, facts), exchange, expect, names, f"recording exchange #{number}")
    return reporter


def recheck_meta(exchanges: list[Exchange], profile: str, source: str | Path | None = None) -> dict[str, Any]:
    """The `meta` for Reporter.write of a re-check (what the report's header shows)."""
    return {"target": f"recording {source}" if source else "a recording", "profile": profile, "mode": "offline re-check",
            "exchanges": len(exchanges)}


def write_recheck(source: str | Path, profile: str, directory: str | Path, *, region: str | None = None) -> tuple[Reporter, Path, Path]:
    """load + recheck + write report.json and report.md (keys masked) into `directory`."""
    exchanges = load(source)
    reporter = recheck(exchanges, profile, region=region)
    json_path, md_path = reporter.write(Path(directory), recheck_meta(exchanges, profile, source))
    return reporter, json_path, md_path


# --- shapes --------------------------------------------------------------------------------------
