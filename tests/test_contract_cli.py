"""dashscope-contract as users run it: from a checkout or any directory; plan, recheck, diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(sys.executable).with_name("dashscope-contract"))
RECORDINGS = REPO / "fixtures" / "recordings"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("DASHSCOPE_") or k in ("DASHSCOPE_CONTRACT_SHRINK",)}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_run_from_inside_a_checkout_uses_the_installed_suite(tmp_path):
    done = _run(["run", "--models", "qwen-image-plus", "--report", str(tmp_path / "report"), "--", "-k", "unknown_task"], REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["meta"]["drift"] is False and report["checks"]["unknown_task_is_unknown"]["passed"] >= 1


def test_plan_prints_requests_and_cost_and_sends_nothing(tmp_path):
    done = _run(["plan", "--models", "qwen-image-edit-plus"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "curl -sS -X POST" in done.stdout and "$DASHSCOPE_API_KEY" in done.stdout
    assert "# plan: " in done.stdout and "images, about $" in done.stdout and ": fits" in done.stdout
    assert not (tmp_path / "contract-report").exists()


def test_recheck_and_diff_exit_codes(tmp_path):
    ok = _run(["recheck", str(RECORDINGS / "fake-current"), "--profile", "current", "--report", str(tmp_path / "a")], tmp_path)
    drift = _run(["recheck", str(RECORDINGS / "fake-current"), "--profile", "2025-12", "--report", str(tmp_path / "b")], tmp_path)
    assert (ok.returncode, drift.returncode) == (0, 1), ok.stdout + drift.stdout
    assert "DRIFT" in drift.stdout and (tmp_path / "b" / "report.md").is_file()
    same = _run(["diff", str(RECORDINGS / "fake-current"), str(RECORDINGS / "fake-current")], tmp_path)
    changed = _run(["diff", str(RECORDINGS / "fake-current"), str(RECORDINGS / "fake-2025-12"), "--out", str(tmp_path / "d.md")], tmp_path)
    assert (same.returncode, changed.returncode) == (0, 1)
    assert "qwen-image-edit-plus" in (tmp_path / "d.md").read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_target_is_not_checked_exit_2_at_once(tmp_path):
    import time

    env = {**_env(), "DASHSCOPE_HTTP_BASE_URL": f"http://127.0.0.1:{_free_port()}/cn-beijing/api/v1",
           "DASHSCOPE_API_KEY": "sk-demoabj1-0000000000000000"}
    started = time.monotonic()
    done = subprocess.run([SCRIPT, "run", "--report", str(tmp_path / "report")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and time.monotonic() - started < 30, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.startswith("NOT CHECKED: ") and "does not answer" in done.stdout and len(done.stdout.splitlines()) == 1
    report = (tmp_path / "report" / "report.md").read_text()
    assert "**NOT CHECKED**" in report and "no drift" not in report and "no drift" not in done.stdout
    assert json.loads((tmp_path / "report" / "report.json").read_text())["meta"]["not_checked"].endswith(")")


def test_an_embedded_run_ignores_a_real_looking_key_in_the_environment(tmp_path):
    env = {**_env(), "DASHSCOPE_API_KEY": "sk-0123456789abcdef0123456789abcdef"}
    done = subprocess.run([SCRIPT, "run", "--models", "qwen-image-plus", "--report", str(tmp_path / "report"), "--", "-k",
                           "unknown_task or catalog_case"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "the key in DASHSCOPE_API_KEY is ignored" in done.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["meta"]["drift"] is False and "not_checked" not in report["meta"] and report["meta"]["exchanges"] > 10
    assert "ignored" in report["meta"]["target"]


# --- the target's kind, the budget, the severity that fails a run ------------------------------------


def _hiding_admin(app):
    """The fake with its admin API gone: what a proxy, a gateway or another mock looks like."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/__admin"):
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        await app(scope, receive, send)

    return asgi


def _env_for(base_url: str) -> dict[str, str]:
    return {**_env(), "DASHSCOPE_HTTP_BASE_URL": base_url, "DASHSCOPE_API_KEY": "sk-demoabj1-0000000000000000"}


def test_a_loopback_server_without_the_admin_api_is_an_unknown_target_under_a_budget(tmp_path):
    from helpers import make_service, serving

    from mock_server.app import create_app

    with serving(_hiding_admin(create_app(service=make_service()))) as port:
        env = _env_for(f"http://127.0.0.1:{port}/cn-beijing/api/v1")

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([SCRIPT, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                                  stdin=subprocess.DEVNULL)

        planned = cli("plan", "--models", "qwen-image-plus")
        cut = cli("plan", "--models", "qwen-image-plus", "--budget-usd", "0.1")
        forced = cli("run", "--target", "fake", "--report", str(tmp_path / "forced"))
        ran = cli("run", "--models", "qwen-image-plus", "--report", str(tmp_path / "report"), "--", "-k", "unknown_task")
    assert planned.returncode == 0, planned.stderr
    head = planned.stdout.splitlines()[0]
    assert "an unknown server" in head and "budget $1.00" in head and "cheapest choices" in head, head
    assert "CUT by the budget" not in planned.stdout  # the cheapest plan of one model fits in a dollar
    assert cut.returncode == 0 and "CUT by the budget" in cut.stdout and "request(s) cut" in cut.stdout
    fitting = float(cut.stdout.split("budget $0.10: $")[1].split(" fits")[0])
    assert 0 < fitting <= 0.1
    # Forcing the wrong kind: a fake must have its admin API.
    assert forced.returncode == 2 and forced.stdout.startswith("NOT CHECKED: --target fake, but no admin API"), forced.stdout
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert "target: an unknown server" in ran.stdout and "money budget $1.00" in ran.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["meta"]["target_kind"] == "unknown" and report["meta"]["budget"]["limit_usd"] == 1.0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "(kind: unknown)" in markdown and "- money: plan estimate $" in markdown and "budget $1.00" in markdown


def test_a_fake_with_the_admin_api_is_detected_and_a_real_domain_planned_under_the_default_budget(tmp_path, live):
    fake = subprocess.run([SCRIPT, "plan", "--models", "qwen-image-plus"], cwd=tmp_path, env=_env_for(live.base_url()),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert fake.returncode == 0 and "(a fake with the admin API)" in fake.stdout.splitlines()[0], fake.stdout[:500]
    assert "no money budget" in fake.stdout.splitlines()[0]
    # A target forced to be the real service gets the default budget. Loopback with nothing
    # listening: a plan sends nothing, and if it tried it would fail.
    real = subprocess.run([SCRIPT, "plan", "--budget-images", "1000", "--target", "real"], cwd=tmp_path,
                          env=_env_for(f"http://127.0.0.1:{_free_port()}/cn-beijing/api/v1"), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert real.returncode == 0, real.stderr
    head = real.stdout.splitlines()[0]
    assert "the real service (billed)" in head and "budget $1.00" in head, head
    summary = next(line for line in real.stdout.splitlines() if line.startswith("# plan: "))
    total = float(summary.split("about $")[1].split(";")[0])
    fitting = float(summary.split("budget $1.00, 1000 images: $")[1].split(" fits")[0])
    assert total > 1.0 >= fitting > 0.5, summary
    assert "CUT by the budget" in real.stdout


def test_a_real_domain_is_the_real_service_without_being_probed(monkeypatch):
    """The service's own domains (from the catalog, never contacted here) are the real service:
    detected by name, with no request at all (a probe would fail this test)."""
    import dashscope_schemas as ds

    from contract_tests import targets
    from contract_tests.settings import Settings

    def no_probe(*args, **kwargs):
        raise AssertionError("a real domain must not be probed")

    monkeypatch.setattr(targets.Admin, "probe", classmethod(no_probe))
    for name in list(os.environ):
        if name.startswith("DASHSCOPE_"):
            monkeypatch.delenv(name)
    for region, info in ds.load_catalog().regions.items():
        monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", info["base_url"])
        settings = Settings.from_env()
        assert settings.points_at_real_service and settings.billed, region
        assert targets.detect_kind(settings) == ("real", None)
        assert settings.budget_usd_for("real") == 1.0


def test_the_exit_code_follows_the_findings_severity_and_fail_on(tmp_path):
    from contract_tests.cli import _exit_code

    def report(*severities: str, **meta) -> Path:
        path = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({"meta": {"drift": bool(severities), **meta},
                                    "violations": [{"severity": s} for s in severities]}))
        return path

    every, breaking = ("breaking", "warning"), ("breaking",)
    assert _exit_code(report(), 0, every) == 0
    assert _exit_code(report("warning"), 1, every) == 1
    assert _exit_code(report("warning"), 0, breaking) == 0      # --fail-on breaking: a warning passes
    assert _exit_code(report("warning", "breaking"), 1, breaking) == 1
    assert _exit_code(report("info"), 0, every) == 0            # info notes never fail a run
    assert _exit_code(report(not_checked="budget"), 0, every) == 2
    assert _exit_code(report("breaking", not_checked="stopped"), 2, every) == 1  # drift seen before stopping is drift
    assert _exit_code(report(), 4, every) == 2                  # pytest found nothing to run, or crashed
    assert _exit_code(tmp_path / "missing.json", 0, every) == 2


def test_a_target_that_stops_answering_mid_run_stops_the_run(tmp_path):
    """A few requests without any answer end the run at once (NOT CHECKED), instead of every
    remaining test failing on its own, slowly."""
    import pytest

    from contract_tests.client import MAX_TRANSPORT_ERRORS, ContractClient
    from contract_tests.settings import Settings
    from contract_tests.targets import Target

    base = f"http://127.0.0.1:{_free_port()}/cn-beijing/api/v1"
    target = Target(base_url=base, api_key="sk-demoabj1-0000000000000000", region="cn-beijing", origin=base.split("/cn-")[0],
                    admin=None, other_account_key=None, other_region=None, real=True, description="gone", kind="unknown")
    os.environ.pop("DASHSCOPE_CONTRACT_RECORD", None)
    client = ContractClient(target, Settings.from_env())
    for _ in range(MAX_TRANSPORT_ERRORS - 1):
        with pytest.raises(httpx_error()):
            client.get_task("t")
    with pytest.raises(pytest.exit.Exception) as stopped:
        client.get_task("t")
    assert stopped.value.returncode == 2 and "got no answer" in client.stopped_because
    client.close()


def httpx_error():
    import httpx

    return httpx.TransportError
