"""The dashboard as HTML: one server-rendered page with its style and script inlined (allowed by
the response's CSP nonce, nothing else is), and every value that came from a caller (prompts,
scenario names and matches, request ids, the Host a URL was signed for) escaped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from ..accounts import mask_key
from ..backend.tasks import format_time
from ..domain.tasks import FAILED
from .form import scenario_form
from .query import PAGE_SIZE
from .view import Phase, TaskRow, View

REFRESH_MS = 2000
PROMPT_CHARS = 300
ADVANCES = (("+1 min", 60), ("+1 h", 3600), ("+24 h", 86400))
# A blue square: the tab's icon, inline (no request; the CSP lets data: images through).
_ICON = ("data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
         "<rect width='16' height='16' rx='3' fill='%232f5fd0'/></svg>")
_LINKS = ("health", "requests", "scenarios", "clock", "usage", "keys", "tasks")


@cache
def asset(name: str) -> str:
    """A file of this package (the page's CSS and JS), read once."""
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


def _e(value: Any) -> str:
    return escape(str(value))


def duration(seconds: float) -> str:
    """12 s, 1.5 s, 3 min 5 s, 2 h 3 min."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds == int(seconds) else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _table(headings: Iterable[str], rows: Iterable[str], css: str, empty: str) -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _status(status: Any) -> str:
    return f'<span class="status status-{_e(status)}">{_e(status)}</span>'


def _thumbnails(urls: Iterable[str], label: str) -> str:
    return "".join(f'<a href="{_e(url)}" target="_blank" rel="noopener"><img class="thumb" src="{_e(url)}" '
                   f'alt="{_e(label)} image {n}"></a>' for n, url in enumerate(urls, 1))


def _prompt(text: str) -> str:
    shown = text if len(text) <= PROMPT_CHARS else text[:PROMPT_CHARS] + "…"
    return f'<div class="prompt">{_e(shown)}</div>' if text else ""


# --- header and clock ---------------------------------------------------------------------------


def _header(view: View) -> str:
    front = view.front
    links = " · ".join(f'<a href="{_e(front["admin"])}/{name}">{name}</a>' for name in _LINKS)
    if view.active:
        refresh = f"Refreshing every {REFRESH_MS // 1000} s while {view.active} task(s) are PENDING or RUNNING."
    else:
        refresh = "No task is running: no auto-refresh."
    return (f'<header><h1>dashscope-mock <small>{_e(front["version"])}</small></h1>'
            f'<p>Profile <b>{_e(front["profile"])}</b> · <a href="{_e(front["openapi"])}">OpenAPI</a> · control API: {links}</p>'
            f'<p id="refresh-note" class="note">{_e(refresh)}</p>'
            '<nav><a href="#keys">Regions and keys</a> <a href="#clock">Clock</a> <a href="#tasks">Tasks</a> '
            '<a href="#sync">Sync calls</a> <a href="#scenarios">Scenarios</a> <a href="#usage">Usage</a></nav></header>'
            '<p id="action-error" class="error" role="alert" hidden></p>')


def _clock(view: View) -> str:
    clock = view.clock
    state = "frozen" if clock.frozen else "running at wall speed"
    disabled = "" if clock.movable else " disabled"
    advances = "".join(f'<button type="button" data-advance="{seconds}"{disabled}>{label}</button>' for label, seconds in ADVANCES)
    toggle = ('<button type="button" data-clock="unfreeze"{d}>Run</button>' if clock.frozen
              else '<button type="button" data-clock="freeze"{d}>Freeze</button>').format(d=disabled)
    return (f'<section id="clock"><h2>Clock</h2><p><time id="clock-now" data-now="{clock.now}">{_e(clock.service_time)}</time> '
            f'service time (UTC+8) · <span id="clock-state">{state}</span></p>'
            f'<p class="buttons">{advances} {toggle} <button type="button" data-reset{disabled}>Reset the fake</button></p>'
            '<p class="note">Advancing leaves the clock stopped where it lands (Run lets it go on at wall speed). '
            'Reset empties tasks, scenarios (the config\'s come back), usage and the request journal, and goes back to real time.'
            f'{"" if clock.movable else " This fake runs on a clock that cannot be moved."}</p></section>')


# --- regions and keys ---------------------------------------------------------------------------


def _keys(view: View) -> str:
    front, show = view.front, view.filters.show_keys
    rows = []
    for region, urls in front["regions"].items():
        default = ' <span class="tag">default; also plain /api/v1</span>' if region == front["default_region"] else ""
        keys = "".join(f'<li><span class="account">{_e(k["account"])}</span> '
                       f'<code class="key">{_e(k["key"] if show else mask_key(k["key"]))}</code> '
                       f'<span class="key-id">{_e(k["key_id"])}</span> '
                       f'<button type="button" class="copy" data-copy-key="{_e(k["key_id"])}">copy</button></li>'
                       for k in view.keys if k["region"] == region)
        rows.append(f'<tr data-region="{_e(region)}"><td>{_e(region)}{default}</td>'
                    f'<td><code class="base-url">{_e(urls["base_url"])}</code> '
                    f'<button type="button" class="copy" data-copy-text="{_e(urls["base_url"])}">copy</button></td>'
                    f'<td class="real">{_e(urls["real_base_url"])}</td><td><ul class="keys">{keys}</ul></td></tr>')
    switch = (f'<a href="{_e(view.filters.link(show_keys=False))}#keys">mask the keys</a>' if show
              else f'<a href="{_e(view.filters.link(show_keys=True))}#keys">show the keys in full</a>')
    return ('<section id="keys"><h2>Regions and keys</h2>'
            '<p>Give the SDK a region\'s base URL (<code>DASHSCOPE_HTTP_BASE_URL</code>) and a key of that region '
            f'(<code>DASHSCOPE_API_KEY</code>). Copy puts the whole key on the clipboard; {switch}.</p>'
            + _table(("region", "base URL on this fake", "stands for", "keys"), rows, "regions", "no regions") + "</section>")


# --- tasks --------------------------------------------------------------------------------------


def _select(name: str, values: Iterable[str], chosen: str | None) -> str:
    options = "".join(f'<option value="{_e(v)}"{" selected" if v == chosen else ""}>{_e(v)}</option>' for v in values)
    return f'<label>{name} <select name="{name}" data-autosubmit><option value="">any</option>{options}</select></label>'


def _filters(view: View) -> str:
    f = view.filters
    kept = "".join(f'<input type="hidden" name="{name}" value="{value}">' for name, value, default in
                   (("page_size", f.page_size, PAGE_SIZE), ("show_keys", int(f.show_keys), 0)) if value != default)
    return ('<form class="filters" method="get">'
            + _select("status", view.statuses, f.status) + _select("model", view.models, f.model)
            + _select("account", view.accounts, f.account) + _select("region", list(view.front["regions"]), f.region)
            + f'{kept}<button type="submit">Filter</button> '
            f'<a href="{_e(f.link(status=None, model=None, account=None, region=None, page=1))}#tasks">clear</a></form>')


def _pager(view: View) -> str:
    f, tasks = view.filters, view.tasks
    parts = [f"{tasks.total} task(s)", f"page {f.page} of {max(tasks.pages, 1)}"]
    if f.page > 1:
        parts.insert(0, f'<a rel="prev" href="{_e(f.link(page=min(f.page - 1, max(tasks.pages, 1))))}#tasks">← newer</a>')
    if f.page < tasks.pages:
        parts.append(f'<a rel="next" href="{_e(f.link(page=f.page + 1))}#tasks">older →</a>')
    return f'<p class="pager">{" · ".join(parts)}</p>'


def _timeline(phases: list[Phase]) -> str:
    spans = "".join(
        f'<span class="phase status-{_e(p.name)}" data-seconds="{p.seconds}" title="{_e(p.name)} {duration(p.seconds)}">'
        f'{_e(p.name)} {duration(p.seconds)}</span>'
        if p.seconds is not None else f'<span class="phase end status-{_e(p.name)}">{_e(p.name)}</span>' for p in phases)
    return f'<div class="timeline">{spans}</div>'


def _times(output: Mapping[str, Any]) -> str:
    return '<dl class="times">' + "".join(f"<dt>{label}</dt><dd>{_e(output[key])}</dd>" for label, key in
                                          (("submit", "submit_time"), ("scheduled", "scheduled_time"), ("end", "end_time"))
                                          if key in output) + "</dl>"


def _failure(code: Any, message: Any, what: str = "") -> str:
    return f'<div class="failure">{what}<code class="code">{_e(code)}</code> <span class="message">{_e(message)}</span></div>'


def _task_row(row: TaskRow) -> str:
    task, output = row.task, row.output
    failure = _failure(output["code"], output["message"]) if task.status == FAILED else ""
    metrics = output.get("task_metrics")
    shown_metrics = " · ".join(f"{name} {count}" for name, count in metrics.items()) if metrics else ""
    results = output.get("results", [])
    images = _thumbnails((r["url"] for r in results if "url" in r), f"task {task.task_id}")
    image_errors = "".join(_failure(r["code"], r["message"], f"image {n}: ") for n, r in enumerate(results, 1) if "code" in r)
    timing = " (timed by polls)" if task.timing.mode == "polls" else ""
    return (f'<tr class="task" data-task-id="{_e(task.task_id)}" data-status="{_e(task.status)}">'
            f'<td><code class="task-id">{_e(task.task_id)}</code>'
            f'<div class="owner">{_e(task.account)} · {_e(task.region)} · {_e(task.api_key_id)}</div></td>'
            f'<td><b class="model">{_e(task.model)}</b>{_prompt(task.orig_prompt)}</td>'
            f"<td>{_status(task.status)}{failure}</td><td>{_times(output)}</td>"
            f'<td>{_timeline(row.timeline)}{timing}<div class="metrics">{_e(shown_metrics)}</div></td>'
            f'<td class="results">{images}{image_errors}</td></tr>')


def _tasks(view: View) -> str:
    table = _table(("task", "model and prompt", "status", "times (service time)", "timeline and task_metrics", "results"),
                   (_task_row(row) for row in view.tasks.rows), "tasks", "No tasks here.")
    return (f'<section id="tasks"><h2>Tasks</h2><p class="note">Every account\'s asynchronous tasks, newest first.</p>'
            f"{_filters(view)}{_pager(view)}{table}</section>")


# --- sync calls ---------------------------------------------------------------------------------


def _sync_prompt(body: Any) -> tuple[str | None, str]:
    """The model and the text of a synchronous call's body, as far as it is the API's shape."""
    if not isinstance(body, dict):
        return None, ""
    model = body.get("model") if isinstance(body.get("model"), str) else None
    given = body.get("input")
    messages = given.get("messages") if isinstance(given, dict) else None
    texts = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return model, " ".join(texts)


def _sync_calls(view: View) -> str:
    rows = []
    for call in view.sync_calls:
        model, prompt = _sync_prompt(call["body"])
        rows.append(f'<tr class="sync-call" data-request-id="{_e(call["request_id"] or "")}">'
                    f'<td>{_e(format_time(call["time"]))}</td><td>{_e(call["region"] or "")}</td>'
                    f'<td><b class="model">{_e(model or "?")}</b>{_prompt(prompt)}</td>'
                    f'<td>{_status(call["status"] if call["status"] is not None else "no answer")}</td>'
                    f'<td><code>{_e(call["request_id"] or "")}</code></td>'
                    f'<td class="results">{_thumbnails(call["results"], "sync call")}</td></tr>')
    table = _table(("time", "region", "model and prompt", "HTTP status", "request id", "results"), rows, "sync-calls",
                   "No synchronous calls in the request journal.")
    return ('<section id="sync"><h2>Sync calls</h2><p class="note">The last synchronous generation calls in the request journal '
            f'(<code>/__admin/requests</code>), newest first.</p>{table}</section>')


# --- scenarios ----------------------------------------------------------------------------------


def _scenario_row(scenario: Mapping[str, Any]) -> str:
    match = ", ".join(f"{k}={v}" for k, v in scenario["match"].items()) or "every request"
    effect = scenario["effect"]
    params = ", ".join(f"{k}={v}" for k, v in effect.items() if k != "type")
    remaining = scenario["remaining"]
    used_up = remaining == 0
    return (f'<tr class="scenario{" used-up" if used_up else ""}" data-scenario-id="{_e(scenario["id"])}">'
            f'<td><code>{_e(scenario["id"])}</code></td><td class="name">{_e(scenario.get("name") or "")}</td>'
            f'<td>{_e(match)}</td><td><b>{_e(effect["type"])}</b> {_e(params)}</td><td class="applied">{scenario["applied"]}</td>'
            f'<td class="remaining">{"every request" if remaining is None else remaining}{" (used up)" if used_up else ""}</td>'
            f'<td>{"yes" if scenario["only_when_chosen"] else ""}</td>'
            f'<td><button type="button" data-remove-scenario="{_e(scenario["id"])}">Remove</button></td></tr>')


def _scenarios(view: View) -> str:
    table = _table(("id", "name", "match", "effect", "applied", "remaining", "only when chosen", ""),
                   (_scenario_row(s) for s in view.scenarios), "scenarios", "No scenarios.")
    form = scenario_form(view.scenario_schema, {"match.model": view.models})
    return ('<section id="scenarios"><h2>Scenarios</h2><p class="note">Faults and outcomes on demand: the first live scenario '
            'whose match holds acts on a request (or the one it names in <code>X-DashScope-Mock-Scenario</code>).</p>'
            f"{table}<h3>Add a scenario</h3>{form}</section>")


# --- usage --------------------------------------------------------------------------------------


def _usage(view: View) -> str:
    rows = (f'<tr class="usage" data-account="{_e(u["account"])}" data-model="{_e(u["model"])}"><td>{_e(u["account"])}</td>'
            f'<td>{_e(u["region"])}</td><td>{_e(u["model"])}</td><td class="images">{u["images"]}</td><td>{u["free_images"]}</td>'
            f'<td>{"—" if u["free_quota_left"] is None else u["free_quota_left"]}</td>'
            f'<td class="cost">{"unknown" if u["cost_usd"] is None else format(u["cost_usd"], ".4f")}</td></tr>' for u in view.usage)
    table = _table(("account", "region", "model", "images", "free images", "free quota left", "cost (USD)"), rows, "usage",
                   "Nothing generated yet.")
    free = (f'<p class="note">Free tier only: {_e(", ".join(view.free_tier_only))}.</p>' if view.free_tier_only else "")
    return ('<section id="usage"><h2>Usage and cost</h2><p class="note">Images generated per account and model, priced from the '
            f'catalog; free quota first, failed calls free.</p>{table}{free}</section>')


def page(view: View, nonce: str) -> str:
    refresh = f' data-refresh-ms="{REFRESH_MS}"' if view.active else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f'<meta name="referrer" content="same-origin"><link rel="icon" href="{_e(_ICON)}"><title>dashscope-mock dashboard</title>'
            f'<style nonce="{nonce}">{asset("dashboard.css")}</style></head>'
            f'<body{refresh}>{_header(view)}<main>{_keys(view)}{_clock(view)}{_tasks(view)}{_sync_calls(view)}'
            f'{_scenarios(view)}{_usage(view)}</main>'
            f'<script nonce="{nonce}">{asset("dashboard.js")}</script></body></html>')
