"""The report's "Tasks over time": which timing the run is compared with, its findings handed to
the reporter, and the Markdown section (timing.py does the reading and judging)."""

from __future__ import annotations

from typing import Any

import httpx

from .checks import route_evidence
from .timing import FIELD_OF_PHASE, STATISTIC, TOLERANCE_FRACTION, TOLERANCE_SECONDS, TaskLog, notes, summarize

SHIPPED = "the kit's shipped defaults (mock_server/defaults/config.json)"
FROM_ADMIN = "the fake's own configuration (GET /__admin/timing)"
TEST_NAME = "tasks over time (every task answer of the run)"
# On a fake with an admin API the suite plants latency scenarios that lengthen a few tasks: a
# median of at least three tasks sees through them. A target without one (the real service) has
# no such noise, and each of its tasks is costly: one is enough to compare.
MIN_TASKS_ON_A_FAKE = 3


def shipped_timing() -> dict[str, Any]:
    from mock_server.config import Config

    return dict(Config.load().timing)


def configured_timing(origin: str | None, admin_token: str | None = None) -> tuple[dict[str, Any], str]:
    """The timing to compare with, and where it came from: a fake's own (its admin API says it),
    else the kit's shipped defaults (what an unconfigured fake would do)."""
    if origin is not None:
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        try:
            answer = httpx.get(origin + "/__admin/timing", headers=headers, timeout=10)
            if answer.status_code == 200 and isinstance(answer.json().get("timing"), dict):
                return answer.json()["timing"], FROM_ADMIN
        except (httpx.HTTPError, ValueError):
            pass
    return shipped_timing(), SHIPPED


def judge_tasks(reporter: Any, log: TaskLog, configured: tuple[dict[str, Any], str], catalog: Any, *, fake: bool) -> dict[str, Any]:
    """Summarise the run's tasks, report their findings (state_graph, timing_drift) and what was
    judged without one, keep the summary on the reporter for report.json; the summary."""
    config, source = configured
    summary = summarize(log, config, source=source, min_tasks=MIN_TASKS_ON_A_FAKE if fake else 1)
    found = notes(log, summary)
    for note in found:
        evidence = route_evidence(catalog, "task-query") if note.check == "state_graph" else f"the fake's timing: {source}"
        reporter.failed(note.check, note.exchange, note.message, field=note.field, expected=note.expected, actual=note.actual,
                        test=TEST_NAME, evidence=evidence, severity=note.severity)
    flagged = {(note.check, note.exchange.model if note.exchange else None) for note in found}
    for model in summary.models:
        if ("state_graph", model.model) not in flagged:
            reporter.passed("state_graph")
        for judged in model.judgements:
            if judged.verdict == "agrees":
                reporter.passed("timing_drift")
    data = summary.to_dict()
    reporter.timing = data
    return data


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def markdown(timing: dict[str, Any] | None) -> list[str]:
    """The "Tasks over time" section of report.md, from report.json's "timing"."""
    if not timing:
        return []
    lines = ["", "## Tasks over time", "",
             f"Per model: the moves between consecutive answers about one task (creation, then polls; self-moves are"
             f" polls that saw no change) and how long tasks queued and ran, compared with {timing['config_source']}."
             f" The {timing.get('statistic', STATISTIC)} of each phase is compared; a difference over"
             f" {TOLERANCE_SECONDS:g} s or {TOLERANCE_FRACTION:.0%} of the configured length is an info note, not drift.", ""]
    if not timing["models"]:
        return lines + ["No task was followed in this run: nothing to judge.", ""]
    for model in timing["models"]:
        configured = model["configured"]
        lines += [f"### {model['model']} ({model['tasks']} task(s); the fake: {configured.get('mode', 'time')} mode,"
                  f" pending {configured.get('pending', 0)}, running {configured.get('running', 0)})", ""]
        moves = [f"{m['before']} -> {m['after']} ×{m['count']}" + ("" if m["documented"] else " (**not documented**)")
                 for m in model["moves"]]
        lines += [f"- moves: {', '.join(moves) or 'none (each task answered once)'}", "",
                  "| phase | tasks | min s | median s | p90 s | max s | configured s | verdict |", "|---|---|---|---|---|---|---|---|"]
        for judged in model["judgements"]:
            stats = model["phases"].get(judged["phase"]) or {}
            lines.append(f"| {FIELD_OF_PHASE[judged['phase']]} | {stats.get('count', 0)} | {_seconds(stats.get('min'))}"
                         f" | {_seconds(stats.get('median'))} | {_seconds(stats.get('p90'))} | {_seconds(stats.get('max'))}"
                         f" | {_seconds(judged['configured'])} | {judged['verdict']}: {judged['why']} |")
        lines.append("")
    return lines
