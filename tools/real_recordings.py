"""Build fixtures/real/cassette.jsonl: exchanges recorded against the real service and published
by third parties, in the contract suite's cassette format, with their source and date in `notes`.

The source is the .NET SDK cnblogs/dashscope-sdk, whose tests keep raw HTTP exchanges
(test/.../RawHttpData/<name>.{request,response}.{header,body}.*). Run from the repository root with
a local bare clone of it (the search tool's `fetch github:cnblogs/dashscope-sdk` makes one):

    python -m tools.real_recordings /work/.mirror/cnblogs+dashscope-sdk/repo

Scrubbed: URL signatures and OSS access key ids (values replaced, names kept), account ids in
headers; the Authorization header is recorded as the mask "sk-***" (the recordings were made with
a key; the files never held it). Only the headers that matter are kept: content type and the
request-id headers. Where a later commit of the source altered a body (2025-06-08 stripped the
signed query of result URLs), the original commit is read instead.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

SOURCE = "cnblogs/dashscope-sdk"
NEW_DIR = "test/Cnblogs.DashScope.Tests.Shared/RawHttpData"
OLD_DIR = "test/Cnblogs.DashScope.Sdk.UnitTests/RawHttpData"
BASE = "https://dashscope.aliyuncs.com/api/v1"
KEPT_HEADERS = ("content-type", "x-request-id", "x-dashscope-requestid")
_SIGNED = re.compile(r"(OSSAccessKeyId|Signature)=[^&\"]+")

# name: (raw file prefix, commit ('HEAD' or the original one), endpoint, method, path, request body?,
#        request headers, recorded date, model, observations it supports, note)
EXCHANGES: list[dict[str, Any]] = [
    {"name": "multimodal-generation-qwen-image-max", "raw": "multimodal-generation-image-nosse", "commit": "HEAD",
     "endpoint": "multimodal-generation", "path": "/services/aigc/multimodal-generation/generation",
     "headers": {"Content-Type": "application/json"}, "date": "2026-06-11",
     "observations": ["sync-task-metric", "sync-url-7-days", "request-id-headers", "rate-limit-qwen-image-max"]},
    {"name": "image2image-created", "raw": "image2image-synthesis-translation-nosse", "commit": "HEAD",
     "endpoint": "image2image", "path": "/services/aigc/image2image/image-synthesis",
     "headers": {"Content-Type": "application/json", "X-DashScope-Async": "enable"}, "date": "2026-06-13",
     "observations": ["request-id-headers"], "note": "qwen-mt-image, a model outside the kit's catalog: its answer's shape is what counts"},
    {"name": "text2image-created", "raw": "image-synthesis-nosse", "commit": "HEAD",
     "endpoint": "text2image", "path": "/services/aigc/text2image/image-synthesis",
     "headers": {"Content-Type": "application/json", "X-DashScope-Async": "enable"}, "date": "2024-03-01",
     "observations": [], "note": "wanx-v1, outside the catalog"},
    {"name": "task-query-running", "raw": "get-task-running-nosse", "commit": "HEAD", "endpoint": "task-query",
     "path": "/tasks/9e2b6ef6-285d-4efa-8651-4dbda7d571fa", "date": "2024-03-01",
     "observations": ["running-task-metrics", "tasks-content-type", "request-id-headers"],
     "note": "the source's request file names another id (its running and unknown request files are swapped); "
             "the path here is the task the answer is about"},
    {"name": "task-query-succeeded-text2image", "raw": "get-task-image-synthesis-success-nosse", "commit": "649b0c5", "old": True,
     "endpoint": "task-query", "path": "/tasks/9e2b6ef6-285d-4efa-8651-4dbda7d571fa", "date": "2024-03-01",
     "observations": ["async-url-end-plus-24h"], "note": "wanx-v1, n=4; the original body, before the source stripped the signed URLs"},
    {"name": "image-generation-created", "raw": "image-generation-nosse", "commit": "HEAD",
     "endpoint": "image-generation", "path": "/services/aigc/image-generation/generation",
     "headers": {"Content-Type": "application/json", "X-DashScope-Async": "enable"}, "date": "2024-03-02",
     "observations": ["image-generation-route"], "note": "wanx-style-repaint-v1 with its own input (image_url), outside the catalog"},
    {"name": "task-query-succeeded-image-generation", "raw": "get-task-image-generation-success-nosse", "commit": "96ba00d", "old": True,
     "endpoint": "task-query", "path": "/tasks/c4f94e00-5899-431b-9579-eb1ebe686379", "date": "2024-03-02",
     "observations": ["task-times-without-millis", "async-url-end-plus-24h"], "note": "the original body, with its signed URL"},
    {"name": "task-query-unknown", "raw": "get-task-unknown-nosse", "commit": "HEAD", "endpoint": "task-query",
     "path": "/tasks/1111", "date": "2024-02-29", "observations": ["unknown-task", "tasks-content-type"],
     "note": "the path is the id the answer echoes (the source's request files are swapped)"},
    {"name": "task-list", "raw": "list-task-nosse", "commit": "HEAD", "endpoint": "task-list", "path": "/tasks",
     "date": "2024-03-01", "observations": ["task-list-epoch-ms", "task-list-envelope", "tasks-content-type"]},
    {"name": "task-cancel-not-pending", "raw": "cancel-completed-task-nosse", "commit": "HEAD", "endpoint": "task-cancel",
     "method": "POST", "path": "/tasks/6075262c-b56d-4968-9abf-2a9784a90f3e/cancel", "date": "2024-03-01",
     "observations": ["cancel-not-pending", "tasks-content-type"], "note": "a SUCCEEDED task"},
    {"name": "upload-policy", "raw": "get-upload-policy-nosse", "commit": "HEAD", "endpoint": "upload-policy",
     "path": "/uploads?action=getPolicy&model=qwen-vl-plus", "date": "2025-07-12",
     "observations": ["upload-policy-fields", "upload-policy-any-model", "request-id-headers"]},
    {"name": "auth-error", "raw": "auth-error-nosse", "commit": "HEAD", "endpoint": "text-generation",
     "path": "/services/aigc/text-generation/generation", "headers": {"Content-Type": "application/json"},
     "date": "2024-11-25", "observations": ["request-id-headers"],
     "note": "an invalid key on the model gateway (text generation, outside the kit's routes: the gateway answers every route alike)"},
    {"name": "sse-validation-error", "raw": "parameter-error-sse", "commit": "HEAD", "endpoint": "text-generation",
     "path": "/services/aigc/text-generation/generation",
     "headers": {"Content-Type": "application/json", "X-DashScope-SSE": "enable"}, "date": "2024-02-26",
     "observations": ["sse-validation-error-in-stream"], "note": "text generation, outside the kit's routes"},
]


def _show(repo: Path, commit: str, path: str) -> str | None:
    done = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True)
    return done.stdout.lstrip("\ufeff") if done.returncode == 0 else None


def _raw(repo: Path, spec: dict[str, Any], suffix: str) -> str | None:
    folder = OLD_DIR if spec.get("old") else NEW_DIR
    return _show(repo, spec["commit"], f"{folder}/{spec['raw']}.{suffix}")


def _scrub(text: str) -> str:
    return _SIGNED.sub(lambda m: f"{m.group(1)}=SCRUBBED", text)


def _response_headers(text: str) -> tuple[int, dict[str, str]]:
    lines = text.strip().splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in KEPT_HEADERS:
            headers[name.strip().lower()] = value.strip()
    return status, headers


def _body(text: str) -> Any:
    try:
        return json.loads(_scrub(text))
    except ValueError:
        return _scrub(text)


def build(repo: Path) -> list[dict[str, Any]]:
    records = []
    for spec in EXCHANGES:
        status, headers = _response_headers(_raw(repo, spec, "response.header.txt") or "")
        if spec["name"] == "upload-policy":
            response = json.loads(_raw(repo, spec, "response.body.txt") or "{}")
            response["data"]["oss_access_key_id"] = "SCRUBBED"
            response["data"]["signature"] = "SCRUBBED="
        else:
            response = _body(_raw(repo, spec, "response.body.txt") or "")
        request_body = _raw(repo, spec, "request.body.json")
        method = spec.get("method") or ("POST" if request_body is not None else "GET")
        request_headers = {"Authorization": "sk-***", **spec.get("headers", {})}
        model = json.loads(request_body).get("model") if request_body else None
        if spec["name"] == "upload-policy":
            model = "qwen-vl-plus"
        records.append({
            "method": method, "url": BASE + spec["path"], "endpoint": spec["endpoint"],
            "request_headers": request_headers, "request_body": json.loads(request_body) if request_body else None,
            "status": status, "response_headers": headers, "response_body": response, "elapsed": 0.0, "model": model,
            "notes": {"name": spec["name"], "source": f"{SOURCE} {NEW_DIR if not spec.get('old') else OLD_DIR}/{spec['raw']}.*",
                      "commit": spec["commit"], "recorded": spec["date"], "observations": spec["observations"],
                      **({"note": spec["note"]} if spec.get("note") else {}),
                      "scrubbed": "URL signatures and OSS access key ids; the key was never in the files"},
        })
    return records


def main(argv: list[str]) -> int:
    repo = Path(argv[0]) if argv else Path("/work/.mirror/cnblogs+dashscope-sdk/repo")
    out = Path("fixtures/real/cassette.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in build(repo)), encoding="utf-8")
    print(f"{out}: {len(EXCHANGES)} exchanges")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
