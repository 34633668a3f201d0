"""Recorded runs (cassettes), offline: load one, re-check it against the schemas and catalog of
any API profile without the server, reduce exchanges to their shapes, and diff two recordings.

A cassette is the file the suite's Recorder writes (`<record dir>/cassette.jsonl`): one JSON
exchange per line, keys already masked. Nothing here talks to the network; checks that need it
(downloading result images) are skipped. Everything written or returned for people is passed
through `mask_keys` once more, so a key that slipped past the recorder still never leaves.

    exchanges = load("fixtures/recordings/fake-current")
    reporter = recheck(exchanges, "2025-12")          # Reporter: .findings, .checks, .write(dir, meta)
    result = diff(load("real-last-month"), exchanges)  # JSON-ready dict
    print(diff_markdown(result))
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dashscope_schemas as ds

from .checks import ALWAYS, CHECKS, CheckFailed, Context, Expect
from .exchange import MASK, Exchange
from .report import Reporter
from .requests import oracle
from .settings import region_of_base_url

CASSETTE = "cassette.jsonl"
DEFAULT_REGION = "cn-beijing"
# Checks that only need the recorded exchange (and the catalog): what recheck runs.
OFFLINE_CHECKS = ALWAYS + ("valid_request_accepted", "invalid_request_rejected", "usage_agrees_with_results",
                           "image_size_obeys_rules", "status_moves_forward")
# Checks that need the network (they download result images): never run offline.
NETWORK_CHECKS = ("images_download_as_png",)

# A DashScope key (sk-<hex>), a demo key of the fake (sk-demoabj1-000...) or any other sk-... token;
# not the "sk-" inside words such as task-query, and not the mask itself.
_KEY = re.compile(r"(?<![A-Za-z0-9_])sk-[A-Za-z0-9][A-Za-z0-9_-]{7,}")
_TASK_PATH = re.compile(r"/tasks/([^/?#]+)(?:/cancel)?/?$")
_TERMINAL_UNKNOWN = "UNKNOWN"  # what expired tasks and other accounts' tasks show: not a step of a task's life


def mask_keys(text: str) -> str:
    """Anything that looks like an API key, replaced by the mask (sk-***)."""
    return _KEY.sub(MASK, text)


# --- loading -------------------------------------------------------------------------------------


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


def _exchanges(source: str | Path | Iterable[Exchange]) -> list[Exchange]:
    return load(source) if isinstance(source, (str, Path)) else list(source)


# --- small readers of a recorded exchange --------------------------------------------------------


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _has_key(exchange: Exchange) -> bool:
    return bool(_header(exchange.request_headers, "authorization"))


def _throttled(exchange: Exchange) -> bool:
    return exchange.status == 429 and str(exchange.code or "").startswith("Throttling")


def _task_id_created(exchange: Exchange) -> str | None:
    output = exchange.json.get("output") if isinstance(exchange.json, dict) else None
    task_id = output.get("task_id") if isinstance(output, dict) else None
    return task_id if isinstance(task_id, str) else None


def _task_id_in_url(exchange: Exchange) -> str | None:
    found = _TASK_PATH.search(urlsplit(exchange.url).path)
    return found.group(1) if found else None


def _task_status(exchange: Exchange) -> str | None:
    output = exchange.json.get("output") if isinstance(exchange.json, dict) else None
    status = output.get("task_status") if isinstance(output, dict) else None
    return status if isinstance(status, str) else None


def _model_of(exchange: Exchange) -> str | None:
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


def _image_dims(data: bytes | None) -> tuple[int, int] | None:
    if not data:
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - an undecodable image just means "dimensions unknown"
        return None


def expectation(catalog: ds.Catalog, exchange: Exchange, region: str | None = None) -> Expect | None:
    """What the profile says the answer to a recorded generation request must be (None: no judgement).

    The oracle of the live suite, with the recorded X-DashScope-Async header and region. The output
    size is worked out from the last input image's own bytes (a data URI); when the last image is a
    URL its dimensions are unknown offline, and the size is not judged.
    """
    if exchange.endpoint not in catalog.generation_endpoints or exchange.request_body is None:
        return None
    headers = dict(exchange.request_headers or {})
    region = region or region_of(exchange, catalog)
    try:
        expect = oracle(catalog, exchange.endpoint, exchange.request_body, headers, region)
        if expect.accepted and expect.size is not None:
            request = catalog.check_request(exchange.endpoint, exchange.request_body, headers, region).request
            if request is not None and request.images:
                dims = _image_dims(request.images[-1].data)
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
    exchanges = _exchanges(exchanges)
    catalog = ds.load_catalog(profile)
    reporter = Reporter(mask=mask_keys)
    reporter.exchanges = len(exchanges)
    task_expect: dict[str, Expect | None] = {}
    task_status: dict[str, str] = {}

    for number, exchange in enumerate(exchanges, 1):
        names: list[str] = list(ALWAYS)
        expect: Expect | None = None
        facts: dict[str, Any] = {}
        judged = _has_key(exchange) and exchange.status != 401 and not _throttled(exchange)
        endpoint = catalog.endpoints.get(exchange.endpoint)
        if judged and endpoint is not None and endpoint.generates:
            expect = expectation(catalog, exchange, region)
            if expect is not None:
                names += ["valid_request_accepted", "invalid_request_rejected"]
            names.append("usage_agrees_with_results")
            if endpoint.is_sync_generation:
                names.append("image_size_obeys_rules")
            task_id = _task_id_created(exchange) if exchange.status == 200 else None
            if task_id:
                task_expect[task_id] = expect if expect is not None and expect.accepted else None
        elif judged and exchange.endpoint == "task-query" and exchange.status == 200:
            task_id = _task_id_in_url(exchange)
            expect = task_expect.get(task_id) if task_id else None
            names.append("usage_agrees_with_results")
            status = _task_status(exchange)
            if task_id and status and status != _TERMINAL_UNKNOWN:
                previous = task_status.get(task_id)
                task_status[task_id] = status
                if previous is not None:
                    names.append("status_moves_forward")
                    facts["statuses"] = [previous, status]
        _run(reporter, Context(catalog, None, facts), exchange, expect, names, f"recording exchange #{number}")
    return reporter


def _run(reporter: Reporter, ctx: Context, exchange: Exchange, expect: Expect | None, names: list[str], test: str) -> None:
    for name in names:
        try:
            CHECKS[name](ctx, exchange, expect)
        except CheckFailed as failed:
            reporter.failed(name, exchange, failed.message, field=failed.field, expected=failed.expected,
                            actual=failed.actual, test=test)
        else:
            reporter.passed(name)


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


def shape_of(value: Any) -> Any:
    """A JSON value's structure: objects keep their (sorted) keys, arrays become the sorted union of
    their elements' shapes, and every other value becomes its type name."""
    if isinstance(value, dict):
        return {str(k): shape_of(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        unique = {_canonical(shape_of(item)): shape_of(item) for item in value}
        return [unique[key] for key in sorted(unique)]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def normalize(exchange: Exchange, *, model: str | None = None) -> dict[str, Any]:
    """The shape of an exchange: endpoint, model, status, error code and the response body's
    structure. No value of the body (ids, URLs, times, prompts) survives, only keys and types.
    `model` overrides the recorded one (a task poll does not name its model)."""
    return {"endpoint": exchange.endpoint, "model": model or _model_of(exchange), "status": exchange.status,
            "code": exchange.code if isinstance(exchange.code, str) and exchange.code else None,
            "body": shape_of(exchange.response_body)}


def fields_of(shape: Any, path: str = "$") -> dict[str, set[str]]:
    """Flattened shape: JSON path -> the type names seen there ("object", "array", "string", ...)."""
    out: dict[str, set[str]] = defaultdict(set)
    if isinstance(shape, dict):
        out[path].add("object")
        for key, child in shape.items():
            for sub, types in fields_of(child, f"{path}.{key}").items():
                out[sub] |= types
    elif isinstance(shape, list):
        out[path].add("array")
        for child in shape:
            for sub, types in fields_of(child, f"{path}[]").items():
                out[sub] |= types
    else:
        out[path].add(str(shape))
    return dict(out)


# --- diffing two recordings ----------------------------------------------------------------------


def _attributed(exchanges: list[Exchange]) -> list[tuple[Exchange, str | None]]:
    """Each exchange with its model; task polls and cancels take the model of the request that
    created their task (when that request is in the recording)."""
    models: dict[str, str] = {}
    out = []
    for exchange in exchanges:
        model = _model_of(exchange)
        endpoint = _endpoint(exchange.endpoint)
        if endpoint is not None and endpoint.generates and model:
            task_id = _task_id_created(exchange)
            if task_id:
                models[task_id] = model
        elif model is None and exchange.endpoint in ("task-query", "task-cancel"):
            model = models.get(_task_id_in_url(exchange) or "")
        out.append((exchange, model))
    return out


def _outcome(exchange: Exchange) -> str:
    """The group an answer falls in: its error code, or its status class."""
    if exchange.status >= 400:
        return exchange.code if isinstance(exchange.code, str) and exchange.code else f"HTTP {exchange.status}"
    return f"{exchange.status // 100}xx"


def _answer(exchange: Exchange) -> str:
    code = exchange.code if isinstance(exchange.code, str) and exchange.code else None
    return f"{exchange.status} {code}" if code else str(exchange.status)


def _request_key(exchange: Exchange) -> str:
    async_header = _header(exchange.request_headers, "x-dashscope-async")
    return _canonical([exchange.endpoint, exchange.method, _has_key(exchange), async_header, exchange.request_body])


def _request_summary(exchange: Exchange) -> dict[str, Any]:
    """A recorded request, shortly: enough to recognise it, without its images or prompt text."""
    body = exchange.request_body if isinstance(exchange.request_body, dict) else {}
    endpoint = _endpoint(exchange.endpoint)
    images, prompt = 0, ""
    if endpoint is not None and endpoint.generates and endpoint.prompt_path:
        images = len(ds.items_at(body, endpoint.images_path)) if endpoint.images_path else 0
        prompt = "".join(text for text in ds.values_at(body, endpoint.prompt_path) if isinstance(text, str))
    summary: dict[str, Any] = {"model": body.get("model"), "parameters": body.get("parameters"), "images": images,
                               "prompt_chars": len(prompt), "key": _has_key(exchange)}
    async_header = _header(exchange.request_headers, "x-dashscope-async")
    if async_header is not None or (endpoint is not None and endpoint.is_async):
        summary["async_header"] = async_header
    return summary


def _endpoint(name: str) -> ds.Endpoint | None:
    """An endpoint of the API's plan (the same in every profile)."""
    return ds.load_catalog().endpoints.get(name)


class _Side:
    def __init__(self, exchanges: list[Exchange], ignore_throttled: bool):
        self.total = len(exchanges)
        kept = [(e, m) for e, m in _attributed(exchanges) if not (ignore_throttled and _throttled(e))]
        self.kept = len(kept)
        self.groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.answers: set[str] = set()
        self.requests: dict[str, dict[str, Any]] = {}
        for exchange, model in kept:
            shape = normalize(exchange, model=model)
            key = (exchange.endpoint, model or "-", _outcome(exchange))
            group = self.groups.setdefault(key, {"count": 0, "shapes": {}, "fields": defaultdict(set)})
            group["count"] += 1
            compared = {"status": shape["status"], "code": shape["code"], "body": shape["body"]}
            group["shapes"][_canonical(compared)] = compared
            for path, types in fields_of(shape["body"]).items():
                group["fields"][path] |= types
            self.answers.add(f"{exchange.endpoint}: {_answer(exchange)}")
            if exchange.request_body is not None and not _throttled(exchange):
                request_key = _request_key(exchange)
                entry = self.requests.setdefault(request_key, {"exchange": exchange, "model": model, "answers": set()})
                entry["answers"].add(_answer(exchange))


def diff(a: str | Path | Iterable[Exchange], b: str | Path | Iterable[Exchange], *, labels: tuple[str, str] = ("A", "B"),
         ignore_throttled: bool = True) -> dict[str, Any]:
    """Compare two recordings (paths or lists of exchanges) on normalized shapes.

    Answers are grouped by (endpoint, model, outcome), the outcome being the error code or the
    status class ("2xx"). For each side: groups only it has; for groups both have, the answer shapes
    (status, code, body structure) and the body fields (JSON paths) only one side shows, and fields
    whose type differs; "endpoint: status code" answers only one side gives; and requests sent in
    both recordings (same endpoint, body, async header, key or not) answered differently. Throttled
    429s are timing, not contract: left out unless ignore_throttled=False. The result is
    JSON-ready, deterministic, and holds no body values (only request parameters, which the test
    chose); "same" is True when no difference is listed ("requests_only_in_a/b" only count
    requests one run made and the other did not: informational).
    """
    side_a, side_b = _Side(_exchanges(a), ignore_throttled), _Side(_exchanges(b), ignore_throttled)

    def group_row(key, group):
        return {"endpoint": key[0], "model": key[1], "outcome": key[2], "exchanges": group["count"]}

    changed = []
    for key in sorted(side_a.groups.keys() & side_b.groups.keys()):
        ga, gb = side_a.groups[key], side_b.groups[key]
        fa, fb = ga["fields"], gb["fields"]
        row = {
            "endpoint": key[0], "model": key[1], "outcome": key[2], "exchanges": [ga["count"], gb["count"]],
            "shapes_only_in_a": [ga["shapes"][s] for s in sorted(ga["shapes"].keys() - gb["shapes"].keys())],
            "shapes_only_in_b": [gb["shapes"][s] for s in sorted(gb["shapes"].keys() - ga["shapes"].keys())],
            "fields_only_in_a": sorted(fa.keys() - fb.keys()),
            "fields_only_in_b": sorted(fb.keys() - fa.keys()),
            "type_changes": [{"field": path, "a": sorted(fa[path]), "b": sorted(fb[path])}
                             for path in sorted(fa.keys() & fb.keys()) if fa[path] != fb[path]],
        }
        if row["shapes_only_in_a"] or row["shapes_only_in_b"] or row["fields_only_in_a"] or row["fields_only_in_b"] or row["type_changes"]:
            changed.append(row)

    answered_differently = []
    for request_key in side_a.requests.keys() & side_b.requests.keys():
        ra, rb = side_a.requests[request_key], side_b.requests[request_key]
        if ra["answers"] != rb["answers"]:
            exchange = ra["exchange"]
            answered_differently.append({
                "endpoint": exchange.endpoint, "model": ra["model"] or "-",
                "request_id": hashlib.sha256(request_key.encode()).hexdigest()[:12],
                "request": _request_summary(exchange), "a": sorted(ra["answers"]), "b": sorted(rb["answers"])})
    answered_differently.sort(key=lambda r: (r["endpoint"], r["model"], _canonical(r["request"]), r["request_id"]))

    result: dict[str, Any] = {
        "labels": {"a": labels[0], "b": labels[1]},
        "a": {"exchanges": side_a.total, "compared": side_a.kept, "groups": len(side_a.groups)},
        "b": {"exchanges": side_b.total, "compared": side_b.kept, "groups": len(side_b.groups)},
        "ignore_throttled": ignore_throttled,
        "groups_only_in_a": [group_row(k, side_a.groups[k]) for k in sorted(side_a.groups.keys() - side_b.groups.keys())],
        "groups_only_in_b": [group_row(k, side_b.groups[k]) for k in sorted(side_b.groups.keys() - side_a.groups.keys())],
        "groups_changed": changed,
        "answers_only_in_a": sorted(side_a.answers - side_b.answers),
        "answers_only_in_b": sorted(side_b.answers - side_a.answers),
        "requests_answered_differently": answered_differently,
        "requests_compared": len(side_a.requests.keys() & side_b.requests.keys()),
        "requests_only_in_a": len(side_a.requests.keys() - side_b.requests.keys()),
        "requests_only_in_b": len(side_b.requests.keys() - side_a.requests.keys()),
    }
    result["differences"] = sum(len(result[k]) for k in DIFF_LISTS)
    result["same"] = result["differences"] == 0
    return json.loads(mask_keys(json.dumps(result, ensure_ascii=False)))


DIFF_LISTS = ("groups_only_in_a", "groups_only_in_b", "groups_changed", "answers_only_in_a", "answers_only_in_b",
              "requests_answered_differently")


def _shape_text(shape: Any) -> str:
    return json.dumps(shape, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def diff_markdown(result: dict[str, Any]) -> str:
    """The diff for people: Markdown, in the (deterministic) order of the result."""
    a, b = result["labels"]["a"], result["labels"]["b"]
    lines = [f"# Recording diff: {a} vs {b}", "",
             f"- {a}: {result['a']['exchanges']} exchanges, {result['a']['groups']} answer groups",
             f"- {b}: {result['b']['exchanges']} exchanges, {result['b']['groups']} answer groups",
             f"- requests sent in both: {result['requests_compared']} (only in {a}: {result['requests_only_in_a']}, "
             f"only in {b}: {result['requests_only_in_b']})",
             f"- throttled 429s {'left out' if result['ignore_throttled'] else 'compared'}",
             "- result: " + ("**no differences**" if result["same"] else f"**{result['differences']} difference(s)**"), ""]
    if result["same"]:
        return mask_keys("\n".join(lines))

    def table(title: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        lines.extend([f"## {title}", "", "| endpoint | model | outcome | exchanges |", "|---|---|---|---|"])
        lines.extend(f"| {r['endpoint']} | {r['model']} | {r['outcome']} | {r['exchanges']} |" for r in rows)
        lines.append("")

    if result["requests_answered_differently"]:
        lines += ["## Same request, different answer", "",
                  f"| endpoint | model | request | {a} | {b} |", "|---|---|---|---|---|"]
        for r in result["requests_answered_differently"]:
            request = {k: v for k, v in r["request"].items() if k != "model"}
            lines.append(f"| {r['endpoint']} | {r['model']} | `{_shape_text(request)}` | {', '.join(r['a'])} | {', '.join(r['b'])} |")
        lines.append("")
    for side, label in (("a", a), ("b", b)):
        if result[f"answers_only_in_{side}"]:
            lines += [f"## Answers only {label} gives", ""] + [f"- {x}" for x in result[f"answers_only_in_{side}"]] + [""]
    table(f"Answer groups only in {a}", result["groups_only_in_a"])
    table(f"Answer groups only in {b}", result["groups_only_in_b"])
    if result["groups_changed"]:
        lines += ["## Answer groups in both, shaped differently", ""]
        for g in result["groups_changed"]:
            lines += [f"### {g['endpoint']} / {g['model']} / {g['outcome']} ({g['exchanges'][0]} vs {g['exchanges'][1]} exchanges)", ""]
            for side, label in (("a", a), ("b", b)):
                if g[f"fields_only_in_{side}"]:
                    lines.append(f"- fields only in {label}: " + ", ".join(f"`{f}`" for f in g[f"fields_only_in_{side}"]))
            for change in g["type_changes"]:
                lines.append(f"- `{change['field']}`: {'|'.join(change['a'])} in {a}, {'|'.join(change['b'])} in {b}")
            for side, label in (("a", a), ("b", b)):
                for shape in g[f"shapes_only_in_{side}"]:
                    lines.append(f"- shape only in {label}: `{_shape_text(shape)}`")
            lines.append("")
    return mask_keys("\n".join(lines))


def write_diff(result: dict[str, Any], directory: str | Path) -> tuple[Path, Path]:
    """diff.json and diff.md (keys masked) in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "diff.json", directory / "diff.md"
    json_path.write_text(mask_keys(json.dumps(result, indent=2, ensure_ascii=False)) + "\n", encoding="utf-8")
    md_path.write_text(diff_markdown(result), encoding="utf-8")
    return json_path, md_path
