"""pytest wiring of the contract suite: the target, the client, the checks, the report.

Run `pytest contract_tests` (or `dashscope-contract run`). Settings come from the environment:
see settings.py and the README.
"""

from __future__ import annotations

import json
import os

import dashscope_schemas as ds
import pytest

from . import missing_dependencies

if (_missing := missing_dependencies()) is not None:
    raise ImportError(_missing)

from .checks import ALWAYS, SEVERITY, Context, run_checks
from .client import ContractClient
from .plan import plan_estimate
from .report import Reporter
from .settings import Settings
from .targets import EmbeddedFake, resolve
from .timing_report import configured_timing, judge_tasks


class Contract:
    """What a test uses: send through `client`, then `verify` an answer against named checks."""

    def __init__(self, settings, target, client, reporter, test_id: str):
        self.settings, self.target, self.client, self.reporter = settings, target, client, reporter
        self.catalog = client.catalog
        self.test_id = test_id

    def verify(self, exchange, *names: str, expect=None, always: bool = True, **facts) -> None:
        ctx = Context(self.catalog, self.client, facts)
        failures = run_checks(self.reporter, ctx, exchange, expect, (ALWAYS if always else ()) + names, self.test_id)
        # Every failure is reported; only those as severe as --fail-on fail the test.
        failures = [(name, f) for name, f in failures if (f.severity or SEVERITY[name]) in self.settings.fail_severities]
        if failures:
            lines = [f"[{name}] {f.field or ''}: {f.message} (expected {f.expected!r}, got {f.actual!r})" for name, f in failures]
            body = json.dumps(exchange.response_body, ensure_ascii=False, default=str)[:600] if exchange else ""
            raise AssertionError("\n".join(lines) + f"\n  answer: HTTP {exchange.status} {self.client.masked(body)}"
                                 f"\n  reproduce: {self.client.masked(exchange.curl())}")


@pytest.fixture(scope="session")
def contract_settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def contract_session(contract_settings, request):
    embedded = EmbeddedFake(contract_settings.profile) if contract_settings.embedded else None
    target = resolve(contract_settings, embedded)
    client = ContractClient(target, contract_settings)
    reporter = request.config._contract_reporter
    reporter.mask = client.masked
    request.config._contract_meta = {"target": target.description, "target_kind": target.kind,
                                     "profile": contract_settings.profile, "region": target.region, "client": client}
    # Read now: the embedded fake is gone by the time the report is written.
    request.config._contract_meta["timing_config"] = configured_timing(target.origin if target.is_fake else None,
                                                                       contract_settings.admin_token)
    yield target, client
    client.close()
    if embedded is not None:
        embedded.stop()


@pytest.fixture
def contract(contract_session, contract_settings, request) -> Contract:
    target, client = contract_session
    return Contract(contract_settings, target, client, request.config._contract_reporter, request.node.nodeid)


@pytest.fixture(scope="session")
def catalog(contract_settings) -> ds.Catalog:
    return ds.load_catalog(contract_settings.profile)


def pytest_configure(config):
    config._contract_reporter = Reporter()
    config._contract_meta = {}
    config._contract_skipped = []
    _CONFIG["config"] = config
    if os.environ.get("DASHSCOPE_CONTRACT_SHRINK", "1").lower() in ("0", "false", "no"):
        # Shrinking makes a failure minimal; a run that only needs to know *whether* the target
        # drifts (the mutation tests, a quick CI gate) can skip it.
        from hypothesis import Phase, settings

        settings.register_profile("contract-no-shrink", phases=(Phase.explicit, Phase.reuse, Phase.generate))
        settings.load_profile("contract-no-shrink")


def pytest_runtest_logreport(report):
    """Count skipped tests (and why), and turn a test that failed without reporting a finding (an
    answer so far off that the test itself broke on it) into a finding, so the report explains
    every red test."""
    config = _CONFIG.get("config")
    if config is None:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
        config._contract_skipped.append({"test": report.nodeid, "reason": reason.removeprefix("Skipped: ")})
    elif report.failed and report.when == "call":
        reporter = config._contract_reporter
        if not any(report.nodeid in finding.tests for finding in reporter.findings.values()):
            text = (report.longreprtext or "").strip().splitlines()
            reporter.failed("suite_error", None, (text[-1] if text else "the test failed")[:400], field="(test)",
                            expected="an answer the test can follow", actual=None, test=report.nodeid,
                            evidence="the test's own expectations (see its traceback)")


_CONFIG: dict = {}  # the session's config, for the report hook above


def pytest_sessionfinish(session, exitstatus):
    meta = dict(getattr(session.config, "_contract_meta", {}))
    client = meta.pop("client", None)
    if client is None:
        return
    settings = Settings.from_env()
    budget = client.budget
    meta["exchanges"] = client.sent
    meta["budget"] = {"limit_usd": budget.limit_usd, "limit_images": budget.limit_images,
                      "spent_usd": round(budget.spent_usd, 4), "spent_images": budget.spent_images,
                      "estimate_usd": round(plan_estimate(settings, client.target.kind).total_usd, 4), "cut": budget.cut}
    meta["skipped"] = session.config._contract_skipped
    if client.stopped_because:
        meta["not_checked"] = client.stopped_because
    elif exitstatus not in (0, 1) or client.sent == 0:
        # "No drift" only when the plan ran: a run stopped early, or that sent nothing, checked nothing.
        meta["not_checked"] = f"the run stopped before its plan finished (pytest exit {int(exitstatus)}, {client.sent} exchanges)"
    elif budget.cut:
        meta["not_checked"] = (f"the budget (${budget.limit_usd}, {budget.limit_images or 'any'} images) ran out before the plan"
                               f" finished: {budget.cut} request(s) not sent")
    judge_tasks(session.config._contract_reporter, client.tasks, meta.pop("timing_config"), client.catalog, fake=client.target.is_fake)
    paths = session.config._contract_reporter.write(settings.report_dir, meta)
    session.config._contract_report_paths = paths
    session.config._contract_not_checked = "not_checked" in meta


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    paths = getattr(config, "_contract_report_paths", None)
    if paths:
        reporter = config._contract_reporter
        if getattr(config, "_contract_not_checked", False):
            verdict = "NOT CHECKED"
        else:
            verdict = f"DRIFT: {len(reporter.findings)} violation group(s)" if reporter.drift else "no drift"
        terminalreporter.write_line(f"contract report ({verdict}): {paths[1]} and {paths[0]}")
