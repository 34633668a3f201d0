"""Two recordings compared by shape: which (endpoint, model, outcome) groups and which answers one
has and the other lacks, and which fields changed type, with the smallest request of each.

    result = diff(load("real-last-month"), load("fixtures/recordings/fake-current"))  # JSON-ready dict
    print(diff_markdown(result))
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dashscope_schemas as ds

from .cassette import exchanges_of, has_key, header_of, model_of, task_id_created, task_id_in_url, throttled
from .exchange import Exchange, mask


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
    return {"endpoint": exchange.endpoint, "model": model or model_of(exchange), "status": exchange.status,
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
        model = model_of(exchange)
        endpoint = _endpoint(exchange.endpoint)
        if endpoint is not None and endpoint.generates and model:
            task_id = task_id_created(exchange)
            if task_id:
                models[task_id] = model
        elif model is None and exchange.endpoint in ("task-query", "task-cancel"):
            model = models.get(task_id_in_url(exchange) or "")
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
    async_header = header_of(exchange.request_headers, "x-dashscope-async")
    return _canonical([exchange.endpoint, exchange.method, has_key(exchange), async_header, exchange.request_body])


def _request_summary(exchange: Exchange) -> dict[str, Any]:
    """A recorded request, shortly: enough to recognise it, without its images or prompt text."""
    body = exchange.request_body if isinstance(exchange.request_body, dict) else {}
    endpoint = _endpoint(exchange.endpoint)
    images, prompt = 0, ""
    if endpoint is not None and endpoint.generates and endpoint.prompt_path:
        images = len(ds.items_at(body, endpoint.images_path)) if endpoint.images_path else 0
        prompt = "".join(text for text in ds.values_at(body, endpoint.prompt_path) if isinstance(text, str))
    summary: dict[str, Any] = {"model": body.get("model"), "parameters": body.get("parameters"), "images": images,
                               "prompt_chars": len(prompt), "key": has_key(exchange)}
    async_header = header_of(exchange.request_headers, "x-dashscope-async")
    if async_header is not None or (endpoint is not None and endpoint.is_async):
        summary["async_header"] = async_header
    return summary


def _endpoint(name: str) -> ds.Endpoint | None:
    """An endpoint of the API's plan (the same in every profile)."""
    return ds.load_catalog().endpoints.get(name)


class _Side:
    def __init__(self, exchanges: list[Exchange], ignore_throttled: bool):
        self.total = len(exchanges)
        kept = [(e, m) for e, m in _attributed(exchanges) if not (ignore_throttled and throttled(e))]
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
            if exchange.request_body is not None and not throttled(exchange):
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
    side_a, side_b = _Side(exchanges_of(a), ignore_throttled), _Side(exchanges_of(b), ignore_throttled)

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
    return json.loads(mask(json.dumps(result, ensure_ascii=False)))


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
        return mask("\n".join(lines))

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
    return mask("\n".join(lines))


def write_diff(result: dict[str, Any], directory: str | Path) -> tuple[Path, Path]:
    """diff.json and diff.md (keys masked) in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "diff.json", directory / "diff.md"
    json_path.write_text(mask(json.dumps(result, indent=2, ensure_ascii=False)) + "\n", encoding="utf-8")
    md_path.write_text(diff_markdown(result), encoding="utf-8")
    return json_path, md_path
