"""Find every JSON example in the API pages (../shared/docs) and turn each into a fixture.

    python -m tools.doc_examples [DOCS_DIR] [OUT_DIR]

An example is any balanced {...} block of the page text that parses as JSON: curl bodies,
HTTP response examples, SDK response prints, and fragments quoted in prose or code. Each is
classified by where it stands and by its shape, and written to fixtures/docs/<page>/ with its
source (page, line, section), its kind, the schema it must satisfy and, for SDK prints, the
wire part: the SDK adds fields of its own (status_code, empty code/message, null defaults of
its dataclasses) and the Java SDK renames and drops fields, so only what is the wire's is
validated. The test suite runs this again over the pages and checks that nothing is missing.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = REPO.parent / "shared" / "docs"
DEFAULT_OUT = REPO / "fixtures" / "docs"

_JAVA = ("System.out.println", "public static void", "JsonUtils.toJson")
_PYTHON_CALL = re.compile(r"^\s*(print\(|response = |rsp = |dashscope\.)", re.M)
_CURL_URL = re.compile(r"curl [^\n]*'https?://[^/]+/api/v1(?P<path>/[^'\s]+)'")
_CODE_LINE = re.compile(r"[{}();=<>\[\]]|:$|^\s*(import|from|#|//|\*|--|except|try|else)\b")

# Fields the official Python SDK (dashscope 2.0.2, api_entities/dashscope_response.py) adds to
# what it prints: DashScopeAPIResponse's status_code and its empty code/message, and the null or
# zero defaults of MultiModalConversationOutput/Usage and ImageSynthesisOutput.
_PY_TOP_ADDED = {"status_code": lambda v: True, "code": lambda v: v in ("", None),
                 "message": lambda v: v in ("", None), "usage": lambda v: v is None}
_PY_OUTPUT_ADDED = {"text": lambda v: v is None, "finish_reason": lambda v: v is None, "audio": lambda v: v is None,
                    "results": lambda v: v == []}
_PY_USAGE_ADDED = {"input_tokens": lambda v: v == 0, "output_tokens": lambda v: v == 0, "characters": lambda v: v == 0}


def json_blocks(text: str) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each top-level balanced {...} that parses as JSON."""
    i = 0
    while (start := text.find("{", i)) >= 0:
        depth, k, in_str, esc = 0, start, False, False
        while k < len(text):
            c = text[k]
            if in_str:
                esc = (c == "\\") and not esc
                if c == '"' and not esc:
                    in_str = False
                if c != "\\":
                    esc = False
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        try:
            value = json.loads(text[start : k + 1])
        except ValueError:
            i = start + 1
            continue
        yield start, k + 1, value
        i = k + 1


def _section(before: str) -> str:
    """The nearest preceding line that reads like a heading rather than code or a long paragraph."""
    for line in reversed(before.splitlines()[-60:]):
        line = line.strip().rstrip("|").strip()
        if 2 <= len(line) <= 80 and not _CODE_LINE.search(line) and not line.startswith(('"', "'")):
            return line
    return ""


def _strip(obj: dict[str, Any], rules: dict[str, Any], removed: list[str], prefix: str) -> None:
    for key, is_added in rules.items():
        if key in obj and is_added(obj[key]):
            del obj[key]
            removed.append(prefix + key)


def wire_of_python_print(printed: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    wire, removed = json.loads(json.dumps(printed)), []
    _strip(wire, _PY_TOP_ADDED, removed, "")
    if isinstance(wire.get("output"), dict):
        output = wire["output"]
        if output.get("task_status") == "PENDING" or "choices" in output:
            _strip(output, _PY_OUTPUT_ADDED, removed, "output.")
        else:
            _strip(output, {k: v for k, v in _PY_OUTPUT_ADDED.items() if k != "results"}, removed, "output.")
    if isinstance(wire.get("usage"), dict):
        _strip(wire["usage"], _PY_USAGE_ADDED, removed, "usage.")
    return wire, removed


def _schema_for_response(wire: dict[str, Any], section: str) -> str:
    output = wire.get("output") or {}
    if "choices" in output:
        return "multimodal-generation.response"
    if output.get("task_status") == "PENDING":
        return "task-created.response"
    if "task_status" in output:
        return "task-query.response"
    if {"code", "message"} <= wire.keys():
        return "error"
    raise ValueError(f"unclassified response in section {section!r}: keys {sorted(wire)}")


def classify(text: str, start: int, value: Any, prev_end: int = 0, prev_kind: str | None = None) -> dict[str, Any]:
    before = text[:start]
    context = before[-2500:]
    line_start = before.rfind("\n") + 1
    line_prefix = before[line_start:]
    section = _section(before)
    fixture: dict[str, Any] = {"section": section}
    if line_prefix.rstrip().endswith("--data '"):
        path = _CURL_URL.findall(context)[-1]
        endpoint = {"/services/aigc/multimodal-generation/generation": "multimodal-generation.request",
                    "/services/aigc/text2image/image-synthesis": "image-synthesis.text2image.request",
                    "/services/aigc/image2image/image-synthesis": "image-synthesis.image2image.request"}[path]
        fixture.update(kind="curl-request", wire_format=True, schema=endpoint, example=value, wire=value)
        return fixture
    keys = set(value)
    if keys in ({"image"}, {"text"}):
        ref = "image_item" if keys == {"image"} else "text_item"
        fixture.update(kind="fragment", wire_format=True, schema=f"multimodal-generation.request#/$defs/{ref}",
                       example=value, wire=value)
        return fixture
    if keys == {"role", "content"}:
        fixture.update(kind="fragment", wire_format=True, schema="multimodal-generation.request#/$defs/message",
                       example=value, wire=value)
        return fixture
    if "status_code" in keys:
        wire, removed = wire_of_python_print(value)
        fixture.update(kind="python-sdk-print", wire_format=False, sdk_added=removed,
                       schema=_schema_for_response(wire, section), example=value, wire=wire)
        return fixture
    # What is left are response bodies: printed by the Java SDK when Java code stands between
    # the previous example and this one, or when only a caption separates this one from a Java
    # print ("2. Response of polling"); otherwise HTTP response examples of the HTTP section.
    # The Java SDK maps the body onto its classes: it renames requestId and drops fields it has
    # no member for (submit_time ...), so only the fields present are checked.
    between = text[prev_end:start]
    follows_java = prev_kind == "java-sdk-print" and len(between) < 300
    if "requestId" in keys or follows_java or any(marker in between for marker in _JAVA):
        wire = {("request_id" if k == "requestId" else k): v for k, v in value.items()}
        fixture.update(kind="java-sdk-print", wire_format=False, projection=True,
                       sdk_renamed={"requestId": "request_id"} if "requestId" in keys else {},
                       schema=_schema_for_response(wire, section), example=value, wire=wire)
        return fixture
    fixture.update(kind="http-response", wire_format=True, schema=_schema_for_response(value, section),
                   example=value, wire=value)
    return fixture


def page_id(path: Path) -> str:
    """qwen-image-edit_api-reference_2026-02-10_id.txt -> qwen-image-edit_2026-02-10_id"""
    return path.stem.replace("_api-reference", "").replace("_image-edit", "")


def extract(docs_dir: Path) -> list[dict[str, Any]]:
    fixtures = []
    for page in sorted(docs_dir.glob("*.txt")):
        text = page.read_text(encoding="utf-8")
        prev_end, prev_kind = 0, None
        for ordinal, (start, end, value) in enumerate(json_blocks(text), 1):
            fixture = classify(text, start, value, prev_end, prev_kind)
            prev_end, prev_kind = end, fixture["kind"]
            short = fixture["schema"].split("#")[0].replace(".response", "").replace(".request", "-request")
            detail = fixture["schema"].split("/")[-1] if "#" in fixture["schema"] else short
            name = f"{ordinal:02d}-{fixture['kind']}-{detail}"
            fixtures.append({
                "name": f"{page_id(page)}/{name}",
                "source": {"page": page.name, "line": text.count("\n", 0, start) + 1, "section": fixture.pop("section")},
                **fixture,
            })
    return fixtures


def write(fixtures: list[dict[str, Any]], out_dir: Path) -> None:
    for stale in out_dir.glob("*/*.json"):
        stale.unlink()
    for fixture in fixtures:
        path = out_dir / f"{fixture['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_fixtures(out_dir: Path = DEFAULT_OUT) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out_dir.glob("*/*.json"))]


def main(argv: list[str]) -> int:
    docs = Path(argv[0]) if argv else DEFAULT_DOCS
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    fixtures = extract(docs)
    write(fixtures, out)
    kinds: dict[str, int] = {}
    for f in fixtures:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    print(f"{len(fixtures)} examples from {docs}: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
