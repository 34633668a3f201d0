"""dashscope-mock's shell side: serve --port 0 --ready-file, and the subcommands that drive a
running fake (advance, scenario, reset, requests, usage, clock, health)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from helpers import ASYNC, PATHS, REPO, auth, demo_key, make_service, serving, t2i_body

from mock_server.app import create_app
from mock_server.cli import main


def run(capsys, *argv: str) -> tuple[int, object, str]:
    """The exit status, the JSON printed on stdout (None if nothing) and stderr."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else None), err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_clock_reset_usage_and_health_from_the_shell(live, capsys):
    url = ("--url", live.origin)
    status, advanced, _ = run(capsys, "advance", "3600", *url)
    assert status == 0 and advanced["frozen"] is True
    assert run(capsys, "clock", *url)[1] == advanced
    status, unfrozen, _ = run(capsys, "clock", "unfreeze", *url)
    assert status == 0 and unfrozen["frozen"] is False and unfrozen["now"] >= advanced["now"]
    assert run(capsys, "clock", "freeze", *url)[1]["frozen"] is True
    assert run(capsys, "health", *url)[1]["status"] == "ok"
    assert run(capsys, "usage", *url)[1] == {"usage": [], "free_tier_only": []}
    status, reset, _ = run(capsys, "reset", *url)
    assert status == 0 and reset["reset"] is True and reset["frozen"] is False


def test_scenarios_from_the_shell(live, capsys, tmp_path):
    url = ("--url", live.origin)
    status, added, _ = run(capsys, "scenario", "add", '{"name": "down", "effect": {"type": "unavailable"}}', *url)
    assert status == 0 and added["name"] == "down"
    path = tmp_path / "more.json"
    path.write_text(json.dumps({"scenarios": [{"id": "slow", "effect": {"type": "latency", "pending_seconds": 5}},
                                              {"effect": {"type": "reject", "error": "arrearage"}, "only_when_chosen": True}]}))
    assert [s["id"] for s in run(capsys, "scenario", "add", f"@{path}", *url)[1]["scenarios"]] == ["slow", "sc-2"]
    assert [s["id"] for s in run(capsys, "scenario", "list", *url)[1]["scenarios"]] == [added["id"], "slow", "sc-2"]
    assert run(capsys, "scenario", "remove", "slow", *url)[:2] == (0, {"deleted": "slow"})
    status, out, err = run(capsys, "scenario", "remove", "slow", *url)
    assert (status, out) == (1, None) and "404 NotFound: no scenario 'slow'" in err and err.count("\n") == 1
    assert run(capsys, "scenario", "clear", *url)[1] == {"scenarios": []}
    assert live.service.scenarios.all() == []


def test_requests_from_the_shell(live, capsys):
    base = live.base_url()
    with httpx.Client(base_url=base, timeout=10) as http:
        created = http.post(PATHS["text2image"], json=t2i_body(), headers=auth(**ASYNC))
        http.get(f"/tasks/{created.json()['output']['task_id']}", headers=auth())
        http.post(PATHS["text2image"], json=t2i_body(), headers=ASYNC)
    status, answer, _ = run(capsys, "requests", "--url", live.origin)
    assert status == 0 and [r["endpoint"] for r in answer["requests"]] == ["text2image", "task-query", "text2image"]
    assert demo_key() not in json.dumps(answer)
    status, answer, _ = run(capsys, "requests", "--endpoint", "text2image", "--status", "200", "--region", "cn-beijing",
                            "--limit", "1", "--url", live.origin)
    assert answer["total"] == 1 and answer["requests"][0]["request_id"] == created.json()["request_id"]
    assert run(capsys, "requests", "--limit", "1", "--url", live.origin)[1]["requests"][0]["status"] == 401
    status, _, err = run(capsys, "requests", "--endpoint", "nope", "--url", live.origin)
    assert status == 1 and "400 InvalidParameter: endpoint: one of" in err


def test_the_url_from_the_environment_and_a_base_url_will_do(live, capsys, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_MOCK_URL", live.base_url("ap-southeast-1") + "/")
    status, health, _ = run(capsys, "health")
    assert status == 0 and health["status"] == "ok"


def test_a_fake_that_does_not_answer_is_one_line_and_status_1(capsys):
    status, out, err = run(capsys, "reset", "--url", f"http://127.0.0.1:{closed_port()}")
    assert (status, out) == (1, None)
    assert err.startswith("dashscope-mock: no answer from a fake at http://127.0.0.1:") and err.count("\n") == 1


def test_bad_input_here_is_status_2_and_a_refusal_there_status_1(live, capsys, tmp_path):
    status, _, err = run(capsys, "scenario", "add", "{oops", "--url", live.origin)
    assert status == 2 and err.startswith("dashscope-mock: {oops: ")
    assert run(capsys, "scenario", "add", f"@{tmp_path / 'missing.json'}", "--url", live.origin)[0] == 2
    status, _, err = run(capsys, "scenario", "add", '{"effect": {"type": "explode"}}', "--url", live.origin)
    assert status == 1 and "refused POST /__admin/scenarios: 400 InvalidParameter: scenario: effect.type" in err


def _as_remote(app):
    """The app as a caller from another machine reaches it (the scope's client address)."""

    async def remote(scope, receive, send):
        await app({**scope, "client": ("192.0.2.7", 40000)} if scope["type"] == "http" else scope, receive, send)

    return remote


def test_a_remote_fake_takes_the_admin_token_from_the_option_or_the_environment(capsys, monkeypatch):
    monkeypatch.delenv("DASHSCOPE_MOCK_ADMIN_TOKEN", raising=False)
    service = make_service(admin_token="t0ken-for-ci")
    with serving(_as_remote(create_app(service=service))) as port:
        url = ("--url", f"http://127.0.0.1:{port}")
        status, _, err = run(capsys, "advance", "10", *url)
        assert status == 1 and "403 AccessDenied" in err and not service.clock.frozen
        assert run(capsys, "advance", "10", "--admin-token", "t0ken-for-ci", *url)[0] == 0
        monkeypatch.setenv("DASHSCOPE_MOCK_ADMIN_TOKEN", "t0ken-for-ci")
        assert run(capsys, "health", *url)[0] == 0


def test_serve_on_port_0_writes_the_ready_file_once_it_answers(tmp_path):
    ready = tmp_path / "fake.url"
    ready.write_text("stale\n")  # from an earlier run: must not be taken for this one
    proc = subprocess.Popen([sys.executable, "-m", "mock_server.cli", "serve", "--port", "0", "--ready-file", str(ready), "--fast"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        waiting = threading.Event()
        for _ in range(400):  # the process starting, not a clock-based behaviour
            if ready.exists() and ready.read_text() != "stale\n":
                break
            waiting.wait(0.05)
        url = ready.read_text()
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*\n", url), url
        url = url.strip()
        assert httpx.get(f"{url}/__admin/health", timeout=5).json()["status"] == "ok"  # it answers at once
        assert proc.stdout.readline() == f"dashscope-mock: profile current, serving {url}\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.url"]  # written whole, no temp file left
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
    assert not ready.exists()  # the URL it named no longer answers


@pytest.mark.parametrize("argv", [["advance"], ["scenario"], ["scenario", "remove"], ["requests", "--status", "x"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
