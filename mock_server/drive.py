"""dashscope-mock advance | scenario | reset | requests | usage | clock | health: drive a running
fake from a shell through its control API (/__admin). The answer is printed as JSON on stdout;
when the fake does not answer, or refuses, one line on stderr and exit status 1 (2: bad input here).

The fake is --url (default $DASHSCOPE_MOCK_URL, else http://127.0.0.1:8089; a region's base URL
works too); a fake on another machine needs --admin-token (default $DASHSCOPE_MOCK_ADMIN_TOKEN).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .access import is_loopback

ENV_URL, ENV_TOKEN = "DASHSCOPE_MOCK_URL", "DASHSCOPE_MOCK_ADMIN_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8089"
TIMEOUT = 60.0  # an advance sweeps what it expired before answering
COMMANDS = ("advance", "scenario", "reset", "requests", "usage", "clock", "health")

Request = tuple[str, str, Any, dict[str, Any]]  # method, path under the root, JSON body, query


def add_commands(commands: Any) -> None:
    """The driving subcommands, on the parser's subcommands (argparse's _SubParsersAction)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get(ENV_URL) or DEFAULT_URL,
                        help=f"the fake's root URL (default ${ENV_URL}, else {DEFAULT_URL})")
    common.add_argument("--admin-token", default=os.environ.get(ENV_TOKEN),
                        help=f"for a fake on another machine started with --admin-token (default ${ENV_TOKEN})")
    advance = commands.add_parser("advance", parents=[common], help="move the fake's clock forward (it stays frozen there)")
    advance.add_argument("seconds", type=float)
    scenario = commands.add_parser("scenario", help="add, list or remove scenarios")
    actions = scenario.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[common], help="add a scenario (or a list of them)")
    add.add_argument("spec", metavar="JSON_OR_@FILE", help="the scenario as JSON, or @FILE (@- reads stdin)")
    actions.add_parser("list", parents=[common], help="the live scenarios")
    remove = actions.add_parser("remove", parents=[common], help="remove one scenario")
    remove.add_argument("id")
    actions.add_parser("clear", parents=[common], help="remove every scenario")
    commands.add_parser("reset", parents=[common], help="empty the store, scenarios, usage and journal; real time")
    journal = commands.add_parser("requests", parents=[common], help="the API requests the fake received, oldest first")
    journal.add_argument("--endpoint", help="e.g. text2image, multimodal-generation, task-query")
    journal.add_argument("--region")
    journal.add_argument("--status", type=int)
    journal.add_argument("--limit", type=int, help="the last N")
    commands.add_parser("usage", parents=[common], help="images made and their cost per account, region and model")
    clock = commands.add_parser("clock", parents=[common], help="show, freeze or unfreeze the fake's clock")
    clock.add_argument("action", nargs="?", choices=("show", "freeze", "unfreeze"), default="show")
    commands.add_parser("health", parents=[common], help="is the fake up: status, profile, default region, version")


def _scenario_spec(spec: str) -> Any:
    text = sys.stdin.read() if spec == "@-" else Path(spec[1:]).read_text(encoding="utf-8") if spec.startswith("@") else spec
    data = json.loads(text)
    # A --scenarios file's shape, {"scenarios": [...]}, is welcome too.
    return data["scenarios"] if isinstance(data, dict) and isinstance(data.get("scenarios"), list) else data


def request_of(args: argparse.Namespace) -> Request:
    command = args.command
    if command == "advance":
        return "POST", "/__admin/clock/advance", {"seconds": args.seconds}, {}
    if command == "scenario":
        if args.action == "add":
            return "POST", "/__admin/scenarios", _scenario_spec(args.spec), {}
        if args.action == "remove":
            return "DELETE", f"/__admin/scenarios/{quote(args.id, safe='')}", None, {}
        return ("GET" if args.action == "list" else "DELETE"), "/__admin/scenarios", None, {}
    if command == "reset":
        return "POST", "/__admin/reset", None, {}
    if command == "requests":
        query = {name: value for name in ("endpoint", "region", "status", "limit") if (value := getattr(args, name)) is not None}
        return "GET", "/__admin/requests", None, query
    if command == "clock":
        return ("GET", "/__admin/clock", None, {}) if args.action == "show" else ("POST", f"/__admin/clock/{args.action}", None, {})
    return "GET", f"/__admin/{command}", None, {}


def root_of(url: str) -> str:
    """The fake's root from what a user may hold: the root, or a region's base URL (.../api/v1)."""
    url = url.strip().rstrip("/")
    return url[: -len("/api/v1")] if url.endswith("/api/v1") else url


def _fail(message: str, status: int = 1) -> int:
    print(f"dashscope-mock: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    try:
        method, path, body, query = request_of(args)
    except (OSError, ValueError) as exc:  # an unreadable @FILE, JSON that is not
        return _fail(f"{args.spec[:80]}: {exc}", 2)
    root = root_of(args.url)
    headers = {"Authorization": f"Bearer {args.admin_token}"} if args.admin_token else {}
    # No proxy from the environment for a fake on this machine (HTTP_PROXY would swallow 127.0.0.1).
    trust_env = not is_loopback(urlsplit(root).hostname or "")
    try:
        with httpx.Client(timeout=TIMEOUT, trust_env=trust_env) as http:
            response = http.request(method, root + path, json=body, params=query, headers=headers)
    except httpx.InvalidURL as exc:
        return _fail(f"--url {args.url!r}: {exc}", 2)
    except httpx.HTTPError as exc:
        return _fail(f"no answer from a fake at {root} ({type(exc).__name__}: {str(exc)[:200] or 'no details'})")
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        what = f"{data.get('code')}: {data.get('message')}" if isinstance(data, dict) and "code" in data else response.text[:200]
        return _fail(f"{root} refused {method} {path}: {response.status_code} {what}")
    if not isinstance(data, (dict, list)):
        return _fail(f"{root} answered {response.status_code} without JSON: is it a dashscope-mock fake?")
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0
