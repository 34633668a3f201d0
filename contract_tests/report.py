"""The drift report: every violation grouped by endpoint, model and field, with the smallest
request that showed it, what was expected and what came back, and how often; Markdown for
people and JSON for tools. Written by every run."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exchange import Exchange


@dataclass
class Finding:
    check: str
    endpoint: str
    model: str
    field: str
    message: str
    expected: Any
    actual: Any
    request: Any
    curl: str
    answer: Any
    occurrences: int = 1
    tests: set[str] = dataclasses.field(default_factory=set)  # not `field`: the attribute above shadows it
    # Where the broken expectation comes from: "docs: <pages>" or "observation <id> (<confidence>; <source>)".
    evidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["tests"] = sorted(self.tests)
        return data


class Reporter:
    def __init__(self, mask=lambda text: text):
        self.mask = mask
        self.checks: dict[str, dict[str, int]] = {}
        self.findings: dict[tuple[str, str, str, str], Finding] = {}
        self.started = time.time()
        self.exchanges = 0

    def passed(self, name: str) -> None:
        self.checks.setdefault(name, {"passed": 0, "failed": 0})["passed"] += 1

    def failed(self, name: str, exchange: Exchange | None, message: str, *, field: str | None, expected: Any, actual: Any,
               test: str, evidence: str = "") -> Finding:
        self.checks.setdefault(name, {"passed": 0, "failed": 0})["failed"] += 1
        endpoint = exchange.endpoint if exchange else "(none)"
        model = (exchange.model or "(none)") if exchange else "(none)"
        key = (name, endpoint, model, field or "")
        request = exchange.request_body if exchange else None
        answer = {"status": exchange.status, "body": exchange.response_body} if exchange else None
        curl = self.mask(exchange.curl()) if exchange else ""
        found = self.findings.get(key)
        if found is None:
            found = self.findings[key] = Finding(name, endpoint, model, field or "", message, expected, actual, request, curl,
                                                 self._clip(answer), evidence=evidence)
        else:
            found.occurrences += 1
            if len(json.dumps(request, default=str)) < len(json.dumps(found.request, default=str)):
                # Keep the smallest request that shows it (after Hypothesis shrinks, the minimal one).
                found.request, found.curl, found.message = request, curl, message
                found.expected, found.actual, found.answer = expected, actual, self._clip(answer)
        found.tests.add(test)
        return found

    def _clip(self, value: Any) -> Any:
        text = self.mask(json.dumps(value, ensure_ascii=False, default=str))
        return json.loads(text) if len(text) <= 4000 else text[:4000] + "..."

    @property
    def drift(self) -> bool:
        return bool(self.findings)

    def to_dict(self, meta: dict[str, Any]) -> dict[str, Any]:
        groups = sorted(self.findings.values(), key=lambda f: (f.endpoint, f.model, f.field, f.check))
        seconds = max(time.time() - self.started, 1e-6)
        rate = {"exchanges_per_second": round(meta["exchanges"] / seconds, 1)} if isinstance(meta.get("exchanges"), int) else {}
        return {"meta": {**meta, "seconds": round(seconds, 2), **rate, "drift": self.drift},
                "checks": {name: counts for name, counts in sorted(self.checks.items())},
                "violations": [f.to_dict() for f in groups]}

    def write(self, directory: Path, meta: dict[str, Any]) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        data = self.to_dict(meta)
        json_path, md_path = directory / "report.json", directory / "report.md"
        json_path.write_text(self.mask(json.dumps(data, indent=2, ensure_ascii=False, default=str)) + "\n", encoding="utf-8")
        md_path.write_text(self.mask(markdown(data)), encoding="utf-8")
        return json_path, md_path


def _verdict(meta: dict[str, Any]) -> str:
    if meta.get("not_checked"):
        return f"**NOT CHECKED**: {meta['not_checked']}"
    return "**DRIFT**: the target does not match the documented contract" if meta["drift"] else "no drift found"


def not_checked(directory: Path, meta: dict[str, Any], reason: str) -> tuple[Path, Path]:
    """The report of a run that could not check anything: it says so, and why."""
    reporter = Reporter()
    return reporter.write(directory, {**meta, "not_checked": reason, "exchanges": meta.get("exchanges", 0)})


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    lines = ["# DashScope contract report", "",
             f"- target: {meta.get('target')}", f"- profile checked: {meta.get('profile')}",
             f"- result: {_verdict(meta)}",
             f"- exchanges: {meta.get('exchanges')} ({meta.get('exchanges_per_second', '?')} per second),"
             f" wall time {meta.get('seconds')} s", ""]
    ran = sum(c["passed"] + c["failed"] for c in data["checks"].values())
    failed = sum(c["failed"] for c in data["checks"].values())
    lines += [f"- checks: {ran} run, {failed} failed", ""]
    lines += ["## Checks", "", "| check | passed | failed |", "|---|---|---|"]
    lines += [f"| {name} | {c['passed']} | {c['failed']} |" for name, c in data["checks"].items()]
    if not data["violations"]:
        return "\n".join(lines + [""])
    lines += ["", "## Violations (by endpoint, model, field)", ""]
    current = None
    for v in data["violations"]:
        if (v["endpoint"], v["model"]) != current:
            current = (v["endpoint"], v["model"])
            lines += [f"### {v['endpoint']} / {v['model']}", ""]
        lines += [f"- **{v['field'] or '(request)'}**: `{v['check']}`, {v['occurrences']} time(s): {v['message']}",
                  f"  - expected: `{json.dumps(v['expected'], ensure_ascii=False, default=str)}`",
                  f"  - actual: `{json.dumps(v['actual'], ensure_ascii=False, default=str)}`",
                  f"  - expectation from: {v.get('evidence') or 'docs'}",
                  f"  - reproduce: `{v['curl']}`", ""]
    return "\n".join(lines) + "\n"
