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
from .timing_report import markdown as tasks_over_time


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
    severity: str = "breaking"  # breaking, warning or info (checks.SEVERITIES)

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
        self.timing: dict[str, Any] | None = None  # "Tasks over time" (timing_report.judge_tasks), when a run followed tasks

    def passed(self, name: str) -> None:
        self.checks.setdefault(name, {"passed": 0, "failed": 0})["passed"] += 1

    def failed(self, name: str, exchange: Exchange | None, message: str, *, field: str | None, expected: Any, actual: Any,
               test: str, evidence: str = "", severity: str = "breaking") -> Finding:
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
                                                 self._clip(answer), evidence=evidence, severity=severity)
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
        """Any finding but an info note: the target differs from the contract."""
        return any(f.severity != "info" for f in self.findings.values())

    def worst(self) -> str | None:
        """The most severe finding's severity (breaking, warning, info), None without findings."""
        found = {f.severity for f in self.findings.values()}
        return next((s for s in ("breaking", "warning", "info") if s in found), None)

    def by_severity(self) -> dict[str, int]:
        counts = {"breaking": 0, "warning": 0, "info": 0}
        for finding in self.findings.values():
            counts[finding.severity] += 1
        return counts

    def to_dict(self, meta: dict[str, Any]) -> dict[str, Any]:
        groups = sorted(self.findings.values(), key=lambda f: (f.endpoint, f.model, f.field, f.check))
        seconds = max(time.time() - self.started, 1e-6)
        rate = {"exchanges_per_second": round(meta["exchanges"] / seconds, 1)} if isinstance(meta.get("exchanges"), int) else {}
        return {"meta": {**meta, "seconds": round(seconds, 2), **rate, "drift": self.drift, "severities": self.by_severity()},
                "checks": {name: counts for name, counts in sorted(self.checks.items())},
                "violations": [f.to_dict() for f in groups],
                **({"timing": self.timing} if self.timing is not None else {})}

    def write(self, directory: Path, meta: dict[str, Any]) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        data = self.to_dict(meta)
        json_path, md_path = directory / "report.json", directory / "report.md"
        json_path.write_text(self.mask(json.dumps(data, indent=2, ensure_ascii=False, default=str)) + "\n", encoding="utf-8")
        md_path.write_text(self.mask(markdown(data)), encoding="utf-8")
        return json_path, md_path


def _verdict(meta: dict[str, Any]) -> str:
    severities = meta.get("severities") or {}
    counts = ", ".join(f"{severities[s]} {s}" for s in ("breaking", "warning", "info") if severities.get(s))
    if meta.get("not_checked"):
        found = f"; drift in what did run: {counts}" if meta.get("drift") else ""
        return f"**NOT CHECKED**: {meta['not_checked']}{found}"
    if meta["drift"]:
        return f"**DRIFT**: the target does not match the documented contract ({counts})"
    return "no drift found" + (f" ({counts} notes)" if counts else "")


def _money(budget: dict[str, Any]) -> str:
    limit = "no money budget" if budget.get("limit_usd") is None else f"budget ${budget['limit_usd']:.2f}"
    cut = f"; {budget['cut']} request(s) cut by the budget" if budget.get("cut") else ""
    return (f"- money: plan estimate ${budget.get('estimate_usd', 0):.2f}, spent ${budget.get('spent_usd', 0):.4f}"
            f" ({budget.get('spent_images', 0)} images), {limit}{cut}")


def not_checked(directory: Path, meta: dict[str, Any], reason: str) -> tuple[Path, Path]:
    """The report of a run that could not check anything: it says so, and why."""
    reporter = Reporter()
    return reporter.write(directory, {**meta, "not_checked": reason, "exchanges": meta.get("exchanges", 0)})


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    lines = ["# DashScope contract report", "",
             f"- target: {meta.get('target')}" + (f" (kind: {meta['target_kind']})" if meta.get("target_kind") else ""),
             f"- profile checked: {meta.get('profile')}",
             f"- result: {_verdict(meta)}",
             f"- exchanges: {meta.get('exchanges')} ({meta.get('exchanges_per_second', '?')} per second),"
             f" wall time {meta.get('seconds')} s"]
    if meta.get("budget"):
        lines.append(_money(meta["budget"]))
    ran = sum(c["passed"] + c["failed"] for c in data["checks"].values())
    failed = sum(c["failed"] for c in data["checks"].values())
    skipped = meta.get("skipped") or []
    lines += [f"- checks: {ran} run, {failed} failed; tests skipped: {len(skipped)}", ""]
    if skipped:
        reasons: dict[str, int] = {}
        for entry in skipped:
            reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
        lines += ["## Skipped", ""] + [f"- {count} test(s): {reason}" for reason, count in sorted(reasons.items())] + [""]
    lines += ["## Checks", "", "| check | passed | failed |", "|---|---|---|"]
    lines += [f"| {name} | {c['passed']} | {c['failed']} |" for name, c in data["checks"].items()]
    lines += tasks_over_time(data.get("timing"))
    if not data["violations"]:
        return "\n".join(lines + [""])
    lines += ["", "## Violations (by endpoint, model, field)", ""]
    current = None
    for v in data["violations"]:
        if (v["endpoint"], v["model"]) != current:
            current = (v["endpoint"], v["model"])
            lines += [f"### {v['endpoint']} / {v['model']}", ""]
        lines += [f"- **{v['field'] or '(request)'}** ({v.get('severity', 'breaking')}): `{v['check']}`, {v['occurrences']} time(s):"
                  f" {v['message']}",
                  f"  - expected: `{json.dumps(v['expected'], ensure_ascii=False, default=str)}`",
                  f"  - actual: `{json.dumps(v['actual'], ensure_ascii=False, default=str)}`",
                  f"  - expectation from: {v.get('evidence') or 'docs'}",
                  f"  - reproduce: `{v['curl']}`", ""]
    return "\n".join(lines) + "\n"
