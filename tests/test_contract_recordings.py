"""Recorded runs, offline: the shipped recordings of the fake (fixtures/recordings), re-checked
against both API profiles, normalized and diffed; and nothing written keeps a key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from contract_tests.cassette import load, recheck, write_recheck
from contract_tests.exchange import Exchange
from contract_tests.exchange import mask as mask_keys
from contract_tests.recording_diff import diff, diff_markdown, fields_of, normalize, write_diff

RECORDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "recordings"
CURRENT = RECORDINGS / "fake-current"
OLD = RECORDINGS / "fake-2025-12"
DEMO_KEY = "sk-demoabj1-0000000000000000"
REAL_LOOKING_KEY = "sk-0123456789abcdef0123456789abcdef"
TYPE_NAMES = {"string", "integer", "number", "boolean", "null"}
SK_TOKEN = re.compile(r"(?<![A-Za-z0-9_])sk-[A-Za-z0-9_*-]+")
DEMO_KEY_SHAPE = re.compile(r"sk-demo[a-z]{2,3}\d-0{16}")

# What the 2025-12 docs forbid that the current ones allow, among the recorded requests:
# (endpoint, model, field the finding names).
OLD_RULES = {
    ("multimodal-generation", "qwen-image-edit-plus", "parameters.size"),   # size with n > 1
    ("multimodal-generation", "qwen-image-plus", "parameters.size"),        # 1472*1104 and 1104*1472
    ("text2image", "qwen-image-plus", "parameters.size"),
    ("multimodal-generation", "qwen-image-edit-max", "model"),              # no -max edit models yet
    ("image-generation", "qwen-image-plus", "parameters.size"),             # the same sizes, on the SDK 2.0 task route
    ("text2image", "qwen-image-edit-max", "model"),                         # unknown model (400), not a sync-only one (403)
}


@pytest.fixture(scope="module")
def current():
    return load(CURRENT)


@pytest.fixture(scope="module")
def old():
    return load(OLD / "cassette.jsonl")


def _where(reporter, check):
    return {(f.endpoint, f.model, f.field) for f in reporter.findings.values() if f.check == check}


def _leaves(shape):
    if isinstance(shape, dict):
        for value in shape.values():
            yield from _leaves(value)
    elif isinstance(shape, list):
        for value in shape:
            yield from _leaves(value)
    else:
        yield shape


# --- the shipped recordings ------------------------------------------------------------------------


def test_shipped_recordings_are_small_and_complete(current, old):
    for directory, exchanges in ((CURRENT, current), (OLD, old)):
        size = (directory / "cassette.jsonl").stat().st_size
        assert 50_000 < size < 2_000_000, (directory, size)
        endpoints = {e.endpoint for e in exchanges}
        assert {"multimodal-generation", "text2image", "image2image", "task-query", "download"} <= endpoints
        models = {e.model for e in exchanges if e.model}
        assert {"qwen-image-plus", "qwen-image-edit-plus", "qwen-image-edit-max", "wan2.5-i2i-preview"} <= models
    # The same requests were sent to both servers (the catalog cases are deterministic).
    bodies = lambda xs: {json.dumps(e.request_body, sort_keys=True) for e in xs if e.request_body is not None}  # noqa: E731
    assert bodies(current) == bodies(old)


def test_shipped_recordings_hold_no_image_bytes(current, old):
    for exchange in current + old:
        if exchange.endpoint == "download":
            assert set(exchange.response_body) == {"bytes", "sha256"}
            assert exchange.response_body["bytes"] > 0 and len(exchange.response_body["sha256"]) == 64
        # No image in any answer, except the request's own input images, which the fake's schema
        # errors quote back ("[...] is too long").
        sent = json.dumps(exchange.request_body)
        for image in re.findall(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", json.dumps(exchange.response_body)):
            assert image in sent
        if exchange.status == 200:
            assert "iVBORw0KGgo" not in json.dumps(exchange.response_body)
    assert sum(e.endpoint == "download" for e in current) > 0


def test_shipped_files_hold_no_key():
    files = sorted(RECORDINGS.rglob("*"))
    assert any(f.name == "cassette.jsonl" for f in files) and any(f.name == "README.md" for f in files)
    for file in files:
        if not file.is_file():
            continue
        text = file.read_text(encoding="utf-8")
        for token in SK_TOKEN.findall(text):
            assert token == "sk-***" or DEMO_KEY_SHAPE.fullmatch(token), f"{file.name}: {token[:8]}..."
        assert not re.search(r"sk-[0-9a-f]{32}", text), file.name
    # And the recorder masked every key it sent: the Authorization header of each request.
    for exchange in load(CURRENT) + load(OLD):
        assert exchange.request_headers.get("Authorization") in (None, "sk-***")


# --- recheck ---------------------------------------------------------------------------------------


def test_recheck_current_recording_against_current_is_clean(current):
    reporter = recheck(current, "current")
    assert reporter.findings == {}, [f.to_dict() for f in reporter.findings.values()]
    # ...and the checks did run: every exchange, and the request checks on the judged requests.
    assert reporter.checks["not_a_server_error"]["passed"] == len(current)
    assert reporter.checks["valid_request_accepted"]["passed"] > 50
    assert reporter.checks["usage_agrees_with_results"]["passed"] > 50
    assert reporter.checks["image_size_obeys_rules"]["passed"] > 10
    assert reporter.checks["status_moves_forward"]["passed"] > 10
    assert "images_download_as_png" not in reporter.checks  # needs the network: skipped


def test_recheck_current_recording_against_2025_12_finds_what_the_old_docs_forbid(current):
    reporter = recheck(current, "2025-12")
    assert reporter.drift
    # The fake of the current docs accepted these: the old profile wanted them refused.
    assert _where(reporter, "invalid_request_rejected") == OLD_RULES
    assert {f.check for f in reporter.findings.values()} == {"invalid_request_rejected"}
    edit = reporter.findings[("invalid_request_rejected", "multimodal-generation", "qwen-image-edit-plus", "parameters.size")]
    assert edit.expected == "400 InvalidParameter" and edit.actual == "200"
    assert edit.request["parameters"]["n"] > 1 and "size" in edit.request["parameters"]
    assert edit.occurrences == 2
    sizes = reporter.findings[("invalid_request_rejected", "text2image", "qwen-image-plus", "parameters.size")]
    assert sizes.request["parameters"]["size"] in ("1472*1104", "1104*1472")


def test_recheck_2025_12_recording_finds_the_reverse(old):
    against_current = recheck(old, "current")
    # A model the old catalog lacks was refused as unknown (400) where it is now a sync-only one (403).
    unknown_then = ("text2image", "qwen-image-edit-max", "model")
    assert _where(against_current, "valid_request_accepted") == OLD_RULES - {unknown_then}
    assert _where(against_current, "invalid_request_rejected") == {unknown_then}
    refused = against_current.findings[("valid_request_accepted", "multimodal-generation", "qwen-image-edit-max", "model")]
    assert refused.actual == "400 InvalidParameter" and refused.expected == "200"
    # Against its own profile the 2025-12 fake has nothing to answer for.
    own = recheck(old, "2025-12")
    assert own.findings == {}, [f.to_dict() for f in own.findings.values()]


def test_recheck_judges_keyless_401_and_throttled_answers_by_the_always_checks_only(current):
    valid = next(e for e in current if e.endpoint == "multimodal-generation" and e.status == 200
                 and e.model == "qwen-image-edit-plus")
    keyless = Exchange.from_record({**valid.to_record([]), "status": 401, "request_headers": {"Content-Type": "application/json"},
                                    "response_body": {"request_id": "r", "code": "InvalidApiKey", "message": "No API-key provided."}})
    throttled = Exchange.from_record({**valid.to_record([]), "status": 429, "response_body": {
        "request_id": "r", "code": "Throttling.RateQuota", "message": "Requests rate limit exceeded, please try again later."}})
    reporter = recheck([keyless, throttled], "current")
    assert reporter.findings == {}
    assert set(reporter.checks) == {"not_a_server_error", "status_code_documented", "response_schema_conformance", "error_envelope"}


def test_recheck_flags_a_valid_request_refused_and_a_broken_answer(current):
    valid = next(e for e in current if e.endpoint == "multimodal-generation" and e.status == 200
                 and e.model == "qwen-image-edit-plus")
    refused = Exchange.from_record({**valid.to_record([]), "status": 400, "response_body": {
        "request_id": "r", "code": "InvalidParameter", "message": "parameters.size: nope"}})
    broken = Exchange.from_record({**valid.to_record([]), "response_body": {"output": {}, "request_id": 5}})
    reporter = recheck([refused, broken], "current")
    # A 200 without usage breaks the schema and hides the images' size.
    assert {f.check for f in reporter.findings.values()} == {"valid_request_accepted", "response_schema_conformance",
                                                             "image_size_obeys_rules"}


def test_recheck_region_comes_from_the_url(current):
    # wan2.5-i2i-preview is served in cn-beijing, the region of the recorded URLs; in a region
    # without the model (an override) the requests the fake accepted should have been refused.
    wan = [e for e in current if e.model == "wan2.5-i2i-preview"]
    assert recheck(wan, "current").findings == {}
    assert recheck(wan, "current", region="nowhere-1").drift


# --- normalize -------------------------------------------------------------------------------------


def test_normalize_keeps_structure_and_drops_volatile_values(current):
    succeeded = [e for e in current if e.endpoint == "task-query"
                 and (e.json or {}).get("output", {}).get("task_status") == "SUCCEEDED"]
    assert len(succeeded) >= 2
    shapes = [normalize(e) for e in succeeded]
    text = json.dumps(shapes)
    for exchange in succeeded:
        output = exchange.json["output"]
        for volatile in (exchange.json["request_id"], output["task_id"], output["submit_time"], output["end_time"],
                         output["results"][0]["url"]):
            assert volatile not in text
    assert "127.0.0.1" not in text and "http" not in text
    assert set(_leaves([s["body"] for s in shapes])) <= TYPE_NAMES
    first = shapes[0]["body"]
    assert first["output"]["task_id"] == "string" and first["request_id"] == "string"
    assert isinstance(first["output"]["results"], list) and first["output"]["results"][0]["url"] == "string"
    assert list(first) == sorted(first) and list(first["output"]) == sorted(first["output"])
    # Two downloads of different images: the same shape.
    downloads = [normalize(e) for e in current if e.endpoint == "download"]
    assert downloads[0] == downloads[-1] == {"endpoint": "download", "model": None, "status": 200, "code": None,
                                             "body": {"bytes": "integer", "sha256": "string"}}


def test_normalize_collapses_arrays_to_the_union_of_their_elements():
    exchange = Exchange("POST", "http://h/cn-beijing/api/v1/x", "multimodal-generation", {}, {"model": "m"}, 400, {},
                        {"request_id": "abc", "code": "InvalidParameter", "message": "m",
                         "list": [{"b": 1, "a": "x"}, {"a": "y", "b": 2}, {"c": None}, 1.5, True, []]})
    shape = normalize(exchange)
    assert shape["model"] == "m" and shape["status"] == 400 and shape["code"] == "InvalidParameter"
    assert shape["body"] == {"code": "string", "list": ["boolean", "number", [], {"a": "string", "b": "integer"}, {"c": "null"}],
                             "message": "string", "request_id": "string"}
    assert fields_of(shape["body"])["$.list[]"] == {"boolean", "number", "array", "object"}
    assert fields_of(shape["body"])["$.list[].b"] == {"integer"}


def test_round_trip_keeps_the_shape_and_masks_the_key(current):
    original = next(e for e in current if e.endpoint == "task-query" and e.status == 200)
    exchange = Exchange(**{**original.__dict__, "request_headers": {"Authorization": f"Bearer {REAL_LOOKING_KEY}"},
                           "notes": {"seen_with": REAL_LOOKING_KEY}})
    record = exchange.to_record([REAL_LOOKING_KEY])
    assert REAL_LOOKING_KEY not in json.dumps(record)
    back = Exchange.from_record(json.loads(json.dumps(record)))
    assert normalize(back) == normalize(exchange) == normalize(original)
    assert back.request_headers == {"Authorization": "sk-***"}


# --- diff ------------------------------------------------------------------------------------------


def test_diff_of_current_and_2025_12_recordings_lists_the_differences(current, old):
    result = diff(current, old, labels=("current", "2025-12"))
    assert not result["same"] and result["differences"] > 0
    assert result["requests_only_in_a"] == result["requests_only_in_b"] == 0 and result["requests_compared"] > 50
    rows = {(r["endpoint"], r["model"], json.dumps(r["request"]["parameters"], sort_keys=True)): (r["a"], r["b"])
            for r in result["requests_answered_differently"]}
    assert rows[("multimodal-generation", "qwen-image-edit-plus", '{"n": 6, "size": "1033*1032"}')] == (["200"], ["400 InvalidParameter"])
    assert rows[("text2image", "qwen-image-plus", '{"n": 1, "size": "1472*1104"}')] == (["200"], ["400 InvalidParameter"])
    assert {model for _, model, _ in rows} == {"qwen-image-plus", "qwen-image-edit-plus", "qwen-image-edit-max"}
    # qwen-image-edit-max never answers 200 in the 2025-12 recording.
    edit_max = {"endpoint": "multimodal-generation", "model": "qwen-image-edit-max", "outcome": "2xx", "exchanges": 6}
    assert edit_max in result["groups_only_in_a"]
    assert result["groups_only_in_b"] == [{"endpoint": "text2image", "model": "qwen-image-edit-max", "outcome": "InvalidParameter",
                                            "exchanges": 1}]
    # Deterministic, JSON-ready, and readable.
    again = diff(current, old, labels=("current", "2025-12"))
    assert json.dumps(again) == json.dumps(result)
    text = diff_markdown(result)
    assert "## Same request, different answer" in text and "qwen-image-edit-plus" in text and "400 InvalidParameter" in text
    assert text == diff_markdown(again)


def test_diff_of_a_recording_with_itself_is_empty(current):
    result = diff(current, CURRENT)
    assert result["same"] and result["differences"] == 0
    for name in ("groups_only_in_a", "groups_only_in_b", "groups_changed", "answers_only_in_a", "answers_only_in_b",
                 "requests_answered_differently"):
        assert result[name] == [], name
    assert "no differences" in diff_markdown(result)


def test_diff_sees_a_changed_field_type_and_a_new_field(current):
    polls = [e for e in current if e.endpoint == "task-query" and e.status == 200]
    changed = []
    for exchange in polls:
        record = exchange.to_record([])
        record["response_body"] = {**record["response_body"], "request_id": 12345, "extra": {"x": 1}}
        changed.append(Exchange.from_record(record))
    result = diff(polls, changed)
    assert not result["same"] and result["requests_answered_differently"] == []
    group = result["groups_changed"][0]
    assert {"field": "$.request_id", "a": ["string"], "b": ["integer"]} in group["type_changes"]
    assert group["fields_only_in_b"] == ["$.extra", "$.extra.x"] and group["fields_only_in_a"] == []


# --- keys never leave ------------------------------------------------------------------------------


def test_mask_keys_masks_keys_and_nothing_else():
    assert mask_keys(f"Bearer {REAL_LOOKING_KEY}; task-query and sk-***") == "Bearer sk-***; task-query and sk-***"
    assert mask_keys(f'"{DEMO_KEY}"') == '"sk-***"'


def test_written_reports_and_diffs_hold_no_key(current, tmp_path):
    valid = next(e for e in current if e.endpoint == "multimodal-generation" and e.status == 200)
    leaked = Exchange.from_record({**valid.to_record([]), "status": 500, "response_body": {
        "request_id": "r", "code": "InternalError", "message": f"key {REAL_LOOKING_KEY} broke"}})
    cassette = tmp_path / "run" / "cassette.jsonl"
    cassette.parent.mkdir()
    cassette.write_text(json.dumps(leaked.__dict__) + "\n", encoding="utf-8")
    reporter, json_path, md_path = write_recheck(cassette.parent, "current", tmp_path / "report")
    assert reporter.drift and "not_a_server_error" in {f.check for f in reporter.findings.values()}
    paths = [json_path, md_path, *write_diff(diff([leaked], current), tmp_path / "diff")]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert REAL_LOOKING_KEY not in text and not re.search(r"sk-[0-9a-f]{8}", text), path.name
    assert "sk-***" in json_path.read_text(encoding="utf-8")
