"""Inputs the OpenAPI document does not show, on every route: never a 500, always the error
envelope (or OSS's XML error on the OSS-like routes), the server still serving and what was
stored before still intact. The first tests pin the 500s once found; the fuzz test looks for more."""

from __future__ import annotations

import json
from urllib.parse import quote

import dashscope_schemas as ds
import pytest
from helpers import ASYNC, PATHS, AppClient, auth, demo_key, make_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server import parse
from mock_server.app import create_app

API = "/cn-beijing/api/v1"
T2I = API + PATHS["text2image"]
I2I = API + PATHS["image2image"]
MMG = API + PATHS["multimodal-generation"]
JSON = {"Content-Type": "application/json"}
# What the service answers for a body it cannot read (observation body-not-json); why the fake
# could not read it is checked against parse itself below.
BODY_INVALID = ds.load_catalog().error("body_invalid")["message"]


def t2i(**input_fields) -> dict:
    return {"model": "qwen-image-plus", "input": {"prompt": "a cat", **input_fields}, "parameters": {"size": "1328*1328"}}


def assert_envelope(response, status: int | None = None) -> dict:
    assert response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert ds.validate(body, "error") == [], body
    assert len(body["message"]) <= 400
    return body


def assert_oss_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert f"<Code>{code}</Code>" in response.text


@pytest.fixture
def served(service, client):
    """A client, and a task stored before any hostile input: it must survive all of them."""
    created = client.post(T2I, json=t2i(), headers=auth(**ASYNC))
    assert created.status_code == 200
    return client, service, created.json()["output"]["task_id"]


def assert_intact(client, task_id: str) -> None:
    polled = client.get(f"{API}/tasks/{task_id}", headers=auth())
    assert polled.status_code == 200 and polled.json()["output"]["task_status"] != "UNKNOWN"


# --- the 500s once found, each pinned ------------------------------------------------------------


@pytest.mark.parametrize("images", [[1], 5, True, [{"x": 1}], None, "https://e.com/a.png"])
def test_text2image_ignores_an_undeclared_input_images_of_any_shape(served, images):
    client, _, task_id = served
    response = client.post(T2I, json=t2i(images=images), headers=auth(**ASYNC))
    # text2image declares no images: the input object is open, so the field is simply not read.
    assert response.status_code == 200, response.text
    assert_intact(client, task_id)


@pytest.mark.parametrize("query", ["page_no=²", "page_size=³", "page_no=٣", "page_no=" + "9" * 5000, "page_size=1e3",
                                   "page_no=-1", "page_no=0", "page_size=101", "page_no= 1", "page_no=1\n",
                                   "page_no=" + "1" * 19])
def test_list_paging_values_that_are_not_ascii_decimals_in_range_are_a_400(served, query):
    client, _, task_id = served
    name, _, value = query.partition("=")
    body = assert_envelope(client.get(f"{API}/tasks", params={name: value}, headers=auth()), 400)
    assert body["code"] == "InvalidParameter"
    assert_intact(client, task_id)


@pytest.mark.parametrize("value", ["20230101000000\n", "20230101000000 ", "２０２３0101000000", "2023010100000", "x"])
def test_list_times_must_match_the_whole_pattern(served, value):
    client, _, _ = served
    response = client.get(f"{API}/tasks", params={"start_time": value}, headers=auth())
    assert assert_envelope(response, 400)["code"] == "InvalidParameter"


def _result_url(client, service, task_id) -> str:
    service.clock.advance(100)
    return client.get(f"{API}/tasks/{task_id}", headers=auth()).json()["output"]["results"][0]["url"]


@pytest.mark.parametrize("expires", ["²", "9" * 5000, "١٢", "-5", "1e9", " 1"])
def test_result_download_with_a_bad_expires_is_oss_access_denied(served, expires):
    client, service, task_id = served
    url = _result_url(client, service, task_id).removeprefix("http://testserver")
    path, _, query = url.partition("?")
    fields = dict(part.split("=", 1) for part in query.split("&"))
    fields["Expires"] = expires
    response = client.get(path, params=fields)  # no key: result URLs are public, like OSS
    assert_oss_error(response, 403, "AccessDenied")
    assert client.get(url).status_code == 200  # the good URL still works


def test_non_ascii_signature_or_access_key_is_an_oss_error_not_a_crash(served):
    client, service, task_id = served
    url = _result_url(client, service, task_id).removeprefix("http://testserver")
    path, _, query = url.partition("?")
    fields = dict(part.split("=", 1) for part in query.split("&"))
    assert_oss_error(client.get(path, params={**fields, "Signature": "é" * 28}), 403, "SignatureDoesNotMatch")
    assert_oss_error(client.get(path, params={**fields, "OSSAccessKeyId": "ключ"}), 403, "InvalidAccessKeyId")


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize("depth", [65, 950, 5000, 200_000])
def test_json_nested_deeper_than_64_is_a_400_at_parse_time(served, depth):
    client, service, task_id = served
    raw = json.dumps(t2i()).replace('"1328*1328"', _nested(depth))
    body = assert_envelope(client.post(T2I, content=raw, headers=auth(**ASYNC, **JSON)), 400)
    assert (body["code"], body["message"]) == ("InvalidParameter", BODY_INVALID)
    assert_intact(client, task_id)


def test_json_nested_64_deep_is_parsed_and_then_judged_by_the_schema(served):
    client, _, _ = served
    raw = json.dumps(t2i()).replace('"1328*1328"', _nested(62))  # the body and parameters: 64 levels in all
    body = assert_envelope(client.post(T2I, content=raw, headers=auth(**ASYNC, **JSON)), 400)
    assert "parameters.size" in body["message"]


@pytest.mark.parametrize("text", ["a\\ud800b", "\\udfff", "x\\udc00\\ud800"])
@pytest.mark.parametrize("where", ["prompt", "negative_prompt", "key"])
def test_text_that_is_not_valid_unicode_is_refused_before_anything_is_stored_or_billed(served, text, where):
    client, service, task_id = served
    stored, usage = service.store.counts(), service.usage()
    body = t2i(negative_prompt="n")
    raw = json.dumps(body).replace({"prompt": '"a cat"', "negative_prompt": '"n"', "key": '"input"'}[where],
                                   f'"{text}"' if where != "key" else f'"{text}": 1, "input"', 1)
    response = client.post(T2I, content=raw, headers=auth(**ASYNC, **JSON))
    assert assert_envelope(response, 400)["message"] == BODY_INVALID
    assert service.store.counts() == stored and service.usage() == usage
    assert_intact(client, task_id)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "9" * 5000, "1" + "0" * 4400 + ".5"])
def test_numbers_too_large_to_hold_are_a_400(served, number):
    client, _, task_id = served
    for raw in (json.dumps(t2i()).replace('"parameters": {', f'"parameters": {{"seed": {number}, '),
                json.dumps(t2i()).replace('"input": {', f'"input": {{"extra": {number}, ')):
        assert assert_envelope(client.post(T2I, content=raw, headers=auth(**ASYNC, **JSON)), 400)["code"] == "InvalidParameter"
    assert_intact(client, task_id)


@pytest.mark.parametrize("seconds", [1e12, 1e300, 31_000_000_000])
def test_clock_advance_past_its_bound_is_refused_and_changes_nothing(served, seconds):
    client, service, task_id = served
    service.clock.advance(0)  # frozen, so that "unchanged" can be seen
    before = client.get("/__admin/clock").json()
    response = client.post("/__admin/clock/advance", json={"seconds": seconds})
    assert "year 3000" in assert_envelope(response, 400)["message"]
    assert client.get("/__admin/clock").json() == before
    assert_intact(client, task_id)
    for raw in ('{"seconds": 1e400}', '{"seconds": ' + "9" * 5000 + "}", '{"seconds": NaN}', _nested(100)):
        assert_envelope(client.post("/__admin/clock/advance", content=raw), 400)
    assert client.get("/__admin/clock").json() == before


def test_the_parser_bounds_directly():
    assert parse.json_document(_nested(64)) == json.loads(_nested(64))
    assert parse.json_document('{"a": {"b": "\\u00e9\\ud83d\\ude00"}}') == {"a": {"b": "é\U0001F600"}}  # a pair is fine
    for bad in (_nested(65), "[1e999]", '{"\\ud800": 1}', "NaN", "Infinity", b"\xff\xfe", '"\\ud800"', "[1,"):
        with pytest.raises(parse.BadInput):
            parse.json_document(bad)
    # Bytes, as bodies arrive: the bounds hold whether or not the text lets the walk be skipped.
    for bad in (_nested(65).encode(), b'"\\ud800"', '"\ud800"'.encode("utf-8", "surrogatepass"),
                '"\ud800"'.encode("utf-16-le", "surrogatepass"), '["\udc00"]'.encode("utf-32", "surrogatepass"),
                b"\xef\xbb\xbf" + _nested(65).encode()):
        with pytest.raises(parse.BadInput):
            parse.json_document(bad)
    assert parse.json_document('{"p": "한국어 ퟻ"}'.encode()) == {"p": "한국어 ퟻ"}  # 0xED leads Hangul too: walked, fine
    assert parse.decimal("0042", low=1, high=100) == 42
    for bad in ("²", "٣", "", " 1", "1\n", "+1", "-1", "1" * 19, "0"):
        with pytest.raises(parse.BadInput):
            parse.decimal(bad, low=1)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=12)
# Text near JSON: duplicate keys, huge exponents, a BOM, control characters, bytes that are not UTF-8.
_JSON_PIECES = st.sampled_from(['{"a":1,"a":2.5}', "1e999", "-0", "-0.0", "1E+2", "\ufeff", "\x01", '"\\u00e9"', "[", "]",
                                "{", "}", ",", ":", " ", '"x"', "12345678901234567890", "1.5e-400", "0.1"])


def _typed(document: object) -> str:
    """A document's text with its types showing (1 and 1.0, 0.0 and -0.0 differ)."""
    return json.dumps(document, sort_keys=False)


def _out_of_bounds(document: object) -> bool:
    """What json reads but the parser's bounds refuse: infinite or NaN numbers, lone surrogates."""
    if isinstance(document, float):
        return document != document or document in (float("inf"), float("-inf"))
    if isinstance(document, str):
        return any("\ud800" <= char <= "\udfff" for char in document)
    if isinstance(document, dict):
        return any(_out_of_bounds(key) or _out_of_bounds(value) for key, value in document.items())
    return isinstance(document, list) and any(_out_of_bounds(item) for item in document)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_JSON_VALUES.map(lambda value: json.dumps(value, ensure_ascii=False).encode()),
                 st.lists(_JSON_PIECES, max_size=8).map(lambda pieces: "".join(pieces).encode()),
                 st.binary(max_size=24)))
def test_the_fast_json_reading_gives_what_json_gives(raw):
    """json_document reads most bodies with orjson: the same document, with the same types, as
    Python's json (which it falls back on), and the same refusals."""
    try:
        expected = json.loads(raw)
    except (ValueError, RecursionError):
        expected = parse.BadInput
    try:
        got = parse.json_document(raw)
    except parse.BadInput:
        got = parse.BadInput
    if expected is not parse.BadInput and _out_of_bounds(expected):
        assert got is parse.BadInput
    elif expected is parse.BadInput or got is parse.BadInput:
        assert got is expected
    else:
        assert _typed(got) == _typed(expected)


# --- the fuzz test: hostile values where the OpenAPI document shows nothing, on every route ---------

HOSTILE_JSON = st.sampled_from([
    '"a\\ud800b"', '"\\udc00"', "1e400", "-1e400", "9" * 5000, "123456789012345678901234567890", "-0", "0.0",
    _nested(63), _nested(64), _nested(950), '{"a":' * 900 + "1" + "}" * 900, "[1]", "5", "true", '[{"x":1}]', "null",
    "{}", '""', '"²"', '"٣"', '"' + "x" * 5000 + '"', '"\\u0000"', '"%ED%A0%80"',
]) | st.integers(-(2**70), 2**70).map(str)
HOSTILE_TEXT = st.sampled_from(["²", "³", "٣", "१२", "1e3", "0x10", "-1", "0", "9" * 5000, "1\n", " 7", "%", "%ED%A0%80",
                                "\u0000", "ｘ", "20230101000000\n", "NaN", "", "1" * 19]) | st.text(max_size=12)
# Where to put the hostile value: declared fields, and keys the schemas do not declare.
SLOTS = {
    "text2image": [("input", "prompt"), ("input", "images"), ("input", "negative_prompt"), ("input", "undeclared"),
                   ("parameters", "size"), ("parameters", "n"), ("parameters", "seed"), ("parameters", "undeclared"),
                   (None, "model"), (None, "undeclared")],
    "image2image": [("input", "images"), ("input", "prompt"), ("parameters", "n"), ("parameters", "undeclared"), (None, "x")],
    "multimodal-generation": [("input", "messages"), ("input", "undeclared"), ("parameters", "size"), ("parameters", "n"),
                              ("parameters", "watermark"), (None, "parameters")],
}
BODIES = {
    "text2image": t2i(),
    "image2image": {"model": "wan2.5-i2i-preview", "input": {"prompt": "p", "images": ["https://e.com/a.png"]}, "parameters": {}},
    "multimodal-generation": {"model": "qwen-image-edit-plus", "parameters": {},
                              "input": {"messages": [{"role": "user", "content": [{"image": "https://e.com/a.png"}, {"text": "t"}]}]}},
}
MARK = "__HOSTILE_VALUE__"


def _body_with(endpoint: str, slot: tuple[str | None, str], raw_value: str) -> str:
    body = json.loads(json.dumps(BODIES[endpoint]))
    parent, key = slot
    (body if parent is None else body[parent])[key] = MARK
    return json.dumps(body).replace(f'"{MARK}"', raw_value)


FUZZ_CLIENT_SERVICE = make_service()
FUZZ_CLIENT = AppClient(create_app(service=FUZZ_CLIENT_SERVICE))


def _new_task() -> tuple[str, float]:
    task_id = FUZZ_CLIENT.post(T2I, json=t2i(), headers=auth(**ASYNC)).json()["output"]["task_id"]
    return task_id, FUZZ_CLIENT_SERVICE.store.get(task_id).submit_time


EARLIER = [_new_task()]  # a task stored before the hostile inputs; replaced only once it has aged out


@pytest.fixture(scope="module", autouse=True)
def _close_fuzz_client():
    yield
    FUZZ_CLIENT.close()


def _check_answer(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json") and response.status_code >= 400:
        assert ds.validate(response.json(), "error") == [], response.text[:300]
    elif kind.startswith("application/xml"):
        assert "<Error>" in response.text and "<Code>" in response.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_route_answers_hostile_values_with_a_4xx_and_keeps_what_it_stored(data):
    client, key = FUZZ_CLIENT, demo_key()
    route = data.draw(st.sampled_from(["generation", "task-query", "task-cancel", "task-list", "upload-policy",
                                       "upload-host", "result", "admin-advance", "admin-scenarios", "admin-free-tier"]))
    if route == "generation":
        endpoint = data.draw(st.sampled_from(sorted(SLOTS)))
        raw = _body_with(endpoint, data.draw(st.sampled_from(SLOTS[endpoint])), data.draw(HOSTILE_JSON))
        response = client.post(API + PATHS[endpoint], content=raw, headers=auth(key, **ASYNC, **JSON))
    elif route in ("task-query", "task-cancel"):
        task_id = quote(data.draw(HOSTILE_TEXT), safe="") or "x"
        url = f"{API}/tasks/{task_id}" + ("/cancel" if route == "task-cancel" else "")
        response = client.request("GET" if route == "task-query" else "POST", url, headers=auth(key))
    elif route == "task-list":
        names = ["page_no", "page_size", "start_time", "end_time", "status", "model_name", "api_key_id", "region", "other"]
        params = data.draw(st.dictionaries(st.sampled_from(names), HOSTILE_TEXT, min_size=1, max_size=3))
        response = client.get(f"{API}/tasks", params=params, headers=auth(key))
    elif route == "upload-policy":
        params = {"action": data.draw(st.sampled_from(["getPolicy", "²"])), "model": data.draw(HOSTILE_TEXT)}
        response = client.get(f"{API}/uploads", params=params, headers=auth(key))
    elif route == "upload-host":
        fields = {name: data.draw(HOSTILE_TEXT) for name in ("OSSAccessKeyId", "Signature", "policy", "key")}
        response = client.post("/__oss-upload", data=fields, files={"file": ("a.png", b"\x89PNG")})
    elif route == "result":
        params = {name: data.draw(HOSTILE_TEXT) for name in ("Expires", "OSSAccessKeyId", "Signature")}
        response = client.get("/__oss/dashscope-result-fake/results/x.png", params=params)
    elif route == "admin-advance":
        response = client.post("/__admin/clock/advance", content='{"seconds": ' + data.draw(HOSTILE_JSON) + "}")
    elif route == "admin-scenarios":
        scenario = {"id": "s", "name": "n", "times": 1, "match": {"endpoint": "text2image", "model": "qwen-image-plus"},
                    "effect": {"type": "latency", "pending_seconds": 1}}
        where = data.draw(st.sampled_from([("id",), ("name",), ("times",), ("match", "endpoint"), ("match", "model"),
                                           ("match", "region"), ("effect", "type"), ("effect", "pending_seconds"),
                                           ("effect", "response_seconds"), ("effect", "undeclared"), ("match",), ("effect",)]))
        (scenario if len(where) == 1 else scenario[where[0]])[where[-1]] = MARK
        raw = json.dumps(scenario).replace(f'"{MARK}"', data.draw(HOSTILE_JSON))
        response = client.post("/__admin/scenarios", content=raw)
        client.request("DELETE", "/__admin/scenarios")
    else:
        response = client.post("/__admin/usage/free-tier-only", content='{"account": ' + data.draw(HOSTILE_JSON) + ', "enabled": true}')
    _check_answer(response)
    task_id, submitted = EARLIER[0]
    if FUZZ_CLIENT_SERVICE.clock.now() - submitted > 3600:  # an accepted clock advance aged it: start anew
        EARLIER[0] = _new_task()
        return
    assert FUZZ_CLIENT_SERVICE.store.get(task_id) is not None
    assert_intact(client, task_id)


@pytest.mark.parametrize("declared", ["²".encode(), b"9" * 5000, b"1e3"])
def test_upload_host_with_a_content_length_that_is_not_a_decimal_is_an_oss_error(served, declared):
    client, _, task_id = served
    response = client.post("/__oss-upload", content=b"--x--\r\n",
                           headers={"Content-Type": "multipart/form-data; boundary=x", "Content-Length": declared})
    assert_oss_error(response, 400, "InvalidArgument")
    assert_intact(client, task_id)
