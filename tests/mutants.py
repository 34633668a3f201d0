"""Mutants of the fake: the kit's own DashScope fake with exactly one deliberate, realistic defect.

A contract suite is only worth something if it notices when a server drifts from the docs. The
suite passing against the faithful fake proves little on its own (the fake and the suite were
written by the same people, from the same notes); these mutants are the other half of the proof.
Each one is the real fake plus ONE small change of a different kind (a renamed field, a missing
field, a wrong type, a wrong HTTP status, a wrong error code, a forbidden state transition,
inconsistent counts, wrong image sizes, a cancel that should be refused, tasks that outlive their
24 hours, keys accepted in the wrong region, a leak between accounts), and
tests/test_contract_mutations.py runs the whole contract suite against each of them: every
defective mutant must make the suite report drift, through at least one of the checks named in
its `expected_checks`, and the faithful one must pass with no drift. A defect the suite does not
catch is a gap in the suite, to be fixed there, not by making the mutant louder.

The defects are made without copying any of the fake's code: either an ASGI middleware that
rewrites one kind of JSON answer on its way out, or a narrow wrapper around one FakeDashScope
method of its backend on that one instance (never a module-wide patch), so the mutant keeps tracking the fake as
it evolves.

    python tests/mutants.py --list
    python tests/mutants.py renamed-field --port 8090 [--profile 2025-12] [--fast] [--no-rate-limits]

They live with the tests, not in the installed kit: a deliberately broken server is a test tool.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dashscope_schemas as ds
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.errors import DashScopeError
from mock_server.service import FakeDashScope

Rewrite = Callable[[int, Any], "tuple[int, Any] | None"]


# --- the two ways of breaking the fake ------------------------------------------------------------


class JsonRewrite:
    """ASGI middleware: the JSON answers to `method` on paths matching `path` go through
    `rewrite(status, body)`, which returns the (status, body) to send instead, or None to leave
    the answer alone. Other requests, and answers that are not JSON, pass untouched."""

    def __init__(self, app: ASGIApp, *, method: str | None, path: str, rewrite: Rewrite):
        self.app, self.method, self.path, self.rewrite = app, method, re.compile(path), rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.method and scope["method"] != self.method) or not self.path.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send(start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, hold)

    async def _send(self, start: Message, body: bytes, send: Send) -> None:
        headers = [(k, v) for k, v in start.get("headers", [])]
        content_type = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
        status = start["status"]
        if content_type.startswith("application/json"):
            changed = self.rewrite(status, json.loads(body))
            if changed is not None:
                status, data = changed
                body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _rewriting(method: str | None, path: str, rewrite: Rewrite) -> Callable[[FakeDashScope], ASGIApp]:
    """make_app of a mutant whose one defect is a rewrite of some JSON answers."""

    def make_app(service: FakeDashScope) -> ASGIApp:
        app = create_app(service=service)
        app.add_middleware(JsonRewrite, method=method, path=path, rewrite=rewrite)
        return app

    return make_app


def _patching(patch: Callable[[FakeDashScope], None]) -> Callable[[FakeDashScope], ASGIApp]:
    """make_app of a mutant whose one defect is a wrapper around a method of this one instance."""

    def make_app(service: FakeDashScope) -> ASGIApp:
        patch(service)
        return create_app(service=service)

    return make_app


def _path_pattern(*names: str) -> str:
    """A regex of the paths (below /api/v1) of the catalog's endpoints `names`, or of the kind
    of endpoint ("sync", "async") when a name is one of those."""
    endpoints = ds.load_catalog().endpoints.values()
    paths = [e.path for e in endpoints if e.name in names or e.mode in names]
    return "/api/v1(?:" + "|".join(re.escape(p).replace(r"\{task_id\}", "[^/]+") for p in paths) + ")$"


TASK_QUERY = _path_pattern("task-query")
IMAGE_SYNTHESIS = _path_pattern("async")
MULTIMODAL = _path_pattern("sync")
ANY_API = r"/api/v1/"


def _output(body: Any) -> dict:
    output = body.get("output") if isinstance(body, dict) else None
    return output if isinstance(output, dict) else {}


# --- the defects -----------------------------------------------------------------------------------


def _rename_url(status: int, body: Any):
    """SUCCEEDED results carry image_url instead of url."""
    output = _output(body)
    if status != 200 or output.get("task_status") != "SUCCEEDED":
        return None
    output["results"] = [{("image_url" if k == "url" else k): v for k, v in r.items()} for r in output.get("results", [])]
    return status, body


def _drop_usage_width(status: int, body: Any):
    """A synchronous success whose usage lacks width."""
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("usage"), dict):
        return None
    body["usage"].pop("width", None)
    return status, body


def _image_count_as_string(status: int, body: Any):
    """usage.image_count serialised as a string ("1"), wherever usage has it."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict) or not isinstance(usage.get("image_count"), int):
        return None
    usage["image_count"] = str(usage["image_count"])
    return status, body


def _created_201(status: int, body: Any):
    """A created task answered 201 Created (the SDK treats anything but 200 as a failure)."""
    return (201, body) if status == 200 else None


def _metrics_off_by_one(status: int, body: Any):
    """task_metrics of a SUCCEEDED task counts one success too few (as a failure, so TOTAL still adds up)."""
    metrics = _output(body).get("task_metrics")
    if status != 200 or _output(body).get("task_status") != "SUCCEEDED" or not isinstance(metrics, dict):
        return None
    metrics["SUCCEEDED"] -= 1
    metrics["FAILED"] += 1
    return status, body


def _refused_cancel_succeeds(status: int, body: Any):
    """A cancel the service refuses (the task is past PENDING) answers 200 as if it had worked."""
    if status == 400 and isinstance(body, dict) and body.get("code") == "UnsupportedOperation":
        return 200, {"request_id": body.get("request_id")}
    return None


def _unauthorized_without_key(service: FakeDashScope) -> None:
    """A request without any key answers 401 Unauthorized instead of 401 InvalidApiKey."""
    authenticate = service.authenticate
    no_key = service.catalog.error("no_api_key")

    def wrapped(authorization, region):
        try:
            return authenticate(authorization, region)
        except DashScopeError as error:
            if (error.code, error.message) == (no_key["code"], no_key["message"]):
                raise DashScopeError(error.status, "Unauthorized", error.message, error.headers) from None
            raise

    service.authenticate = wrapped  # type: ignore[method-assign]


def _key_of_any_region(service: FakeDashScope) -> None:
    """A key is accepted at every region's endpoint: the region comes from the key, not the URL."""
    authenticate = service.authenticate

    def wrapped(authorization, region):
        try:
            return authenticate(authorization, region)
        except DashScopeError:
            found = service.keys.lookup((authorization or "").strip().partition(" ")[2].strip())
            if found is None:
                raise
            return authenticate(authorization, found.region)

    service.authenticate = wrapped  # type: ignore[method-assign]


def _week_long_tasks(service: FakeDashScope) -> None:
    """Task ids live 7 days instead of 24 hours (the TTL read in the wrong unit): a day-old task
    still answers its status and results instead of UNKNOWN."""
    week = service.config.task_ttl * 7
    service.config = dataclasses.replace(service.config, task_ttl=week)
    service.store.task_ttl = week  # type: ignore[attr-defined]  # the in-memory store's own sweep


def _lagging_replica(service: FakeDashScope) -> None:
    """Polls read from a lagging replica: right after a task's status changes, the next poll
    shows the state before the change once more (RUNNING -> PENDING, SUCCEEDED -> RUNNING)."""
    poll_task = service.tasks.poll
    last_seen: dict[str, Any] = {}
    stale: dict[str, Any] = {}

    def wrapped(key, task_id):
        task = poll_task(key, task_id)
        if task is None:
            return None
        before = last_seen.get(task_id)
        last_seen[task_id] = task
        if before is not None and before.status != task.status:
            stale[task_id] = before
            return task
        return stale.pop(task_id, task)

    service.tasks.poll = wrapped  # type: ignore[method-assign]


def _size_not_rounded(service: FakeDashScope) -> None:
    """Explicit sizes are used as given, not rounded to the rule's multiple (1033*1032 stays
    1033*1032 instead of 1040*1024): the fake's copy of the size rule lost its round_to."""
    check = service.generation.check

    def wrapped(endpoint, body, headers, region):
        request = check(endpoint, body, headers, region)
        rule = request.model.size_rule
        if request.size is None or rule.round_to is None:
            return request
        unrounded = dataclasses.replace(rule, round_to=None)
        return dataclasses.replace(request, model=dataclasses.replace(request.model, size_rule=unrounded))

    service.generation.check = wrapped  # type: ignore[method-assign]


def _region_only_ownership(service: FakeDashScope) -> None:
    """Task ownership compares the region only: another account's task id, with a key of the
    same region, answers the task itself instead of UNKNOWN (and can be cancelled)."""
    owned = service.tasks._owned

    def wrapped(key, task_id, now):
        task = owned(key, task_id, now)
        if task is None:
            other = service.store.get(task_id)
            if other is not None and other.region == key.region:
                task = owned(dataclasses.replace(key, account=other.account), task_id, now)
        return task

    service.tasks._owned = wrapped  # type: ignore[method-assign]


@dataclass(frozen=True)
class Mutant:
    description: str
    expected_checks: tuple[str, ...]         # the check(s), any of which should catch the defect
    make_app: Callable[[FakeDashScope], ASGIApp]

    @property
    def faithful(self) -> bool:
        return not self.expected_checks


MUTANTS: dict[str, Mutant] = {
    "faithful": Mutant("the fake as it is, with no defect: the suite must pass", (), _patching(lambda service: None)),
    "renamed-field": Mutant(
        "SUCCEEDED task results use image_url instead of url",
        ("response_schema_conformance", "usage_agrees_with_results"),
        _rewriting("GET", TASK_QUERY, _rename_url)),
    "missing-field": Mutant(
        "a synchronous generation success has usage without width",
        ("response_schema_conformance",),
        _rewriting("POST", MULTIMODAL, _drop_usage_width)),
    "wrong-type": Mutant(
        "usage.image_count is a string (\"1\") instead of an integer",
        ("response_schema_conformance", "usage_agrees_with_results"),
        _rewriting(None, ANY_API, _image_count_as_string)),
    "wrong-status": Mutant(
        "task creation answers 201 instead of 200",
        ("status_code_documented", "valid_request_accepted"),
        _rewriting("POST", IMAGE_SYNTHESIS, _created_201)),
    "wrong-error-code": Mutant(
        "a request without a key answers 401 Unauthorized instead of 401 InvalidApiKey",
        ("invalid_request_rejected",),
        _patching(_unauthorized_without_key)),
    "forbidden-transition": Mutant(
        "a poll right after a status change shows the previous status again (RUNNING -> PENDING, SUCCEEDED -> RUNNING)",
        ("status_moves_forward",),
        _patching(_lagging_replica)),
    "inconsistent-metrics": Mutant(
        "task_metrics.SUCCEEDED of a SUCCEEDED task is one less than its url results (FAILED one more)",
        ("usage_agrees_with_results",),
        _rewriting("GET", TASK_QUERY, _metrics_off_by_one)),
    "wrong-image-size": Mutant(
        "explicit sizes are not rounded to multiples of 16 (1033*1032 stays 1033*1032, in usage and in the PNG)",
        ("image_size_obeys_rules", "images_download_as_png"),
        _patching(_size_not_rounded)),
    "cancel-not-pending": Mutant(
        "cancelling a task that is no longer PENDING answers 200 (without cancelling it) instead of 400 UnsupportedOperation",
        ("cancel_only_pending",),
        _rewriting("POST", r"/api/v1/tasks/[^/]+/cancel$", _refused_cancel_succeeds)),
    "no-expiry": Mutant(
        "tasks live 7 days instead of 24 hours: a day-old task answers its data instead of UNKNOWN",
        ("expired_task_is_unknown",),
        _patching(_week_long_tasks)),
    "any-region-key": Mutant(
        "a key of another region is accepted (the key's region is used instead of answering 401 InvalidApiKey)",
        ("wrong_region_key_rejected", "invalid_request_rejected"),
        _patching(_key_of_any_region)),
    "cross-account-leak": Mutant(
        "another account's task (same region) is visible: its real status instead of UNKNOWN",
        ("other_account_cannot_see",),
        _patching(_region_only_ownership)),
}


def build(name: str, config: Config | None = None) -> ASGIApp:
    """The ASGI app of mutant `name`, over a fresh FakeDashScope of `config` (the defaults if None)."""
    return MUTANTS[name].make_app(FakeDashScope(config or Config.load()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/mutants.py",
                                     description="Serve the fake with one deliberate defect (see the module docstring).")
    parser.add_argument("name", nargs="?", choices=sorted(MUTANTS), help="which mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants and the checks expected to catch them")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--profile", help="API profile the fake serves: current (default) or 2025-12")
    parser.add_argument("--fast", action="store_true", help="every async task finishes on its first poll")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn the documented rate limits off")
    args = parser.parse_args(argv)
    if args.list:
        for name, mutant in MUTANTS.items():
            print(f"{name:<22} {mutant.description} [{', '.join(mutant.expected_checks) or 'must pass'}]")
        return 0
    if args.name is None:
        parser.error("a mutant name is required (or --list)")
    import uvicorn

    try:
        config = Config.load(profile=args.profile, rate_limits={"enabled": False} if args.no_rate_limits else None)
        if args.fast:
            config = config.with_fast_tasks()
        app = MUTANTS[args.name].make_app(FakeDashScope(config))
    except (OSError, ValueError) as exc:
        print(f"dashscope-mock mutant: {exc}", file=sys.stderr)
        return 2
    base = f"http://{args.host}:{args.port}"
    ready = (f"dashscope-mock mutant {args.name} ({MUTANTS[args.name].description}): profile {config.profile}, "
             f"serving {base}, base URL {base}/{config.default_region}/api/v1")

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:  # the port is bound: say so, in one line
                print(ready, flush=True)

    Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
