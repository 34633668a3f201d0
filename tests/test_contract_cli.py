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
    assert "# catalog cases:" in done.stdout and "images, about $" in done.stdout
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
