"""dashscope-mock serve: the console script starts the fake and says how to reach it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from helpers import demo_key

from mock_server.cli import banner, main
from mock_server.config import Config
from mock_server.service import FakeDashScope


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_banner_lists_each_region_base_url_and_its_demo_keys():
    text = banner(FakeDashScope(Config.load()), "http://127.0.0.1:8089", show_keys=False)
    for region in ("cn-beijing", "ap-southeast-1", "us-east-1"):
        assert f"{region}: base URL http://127.0.0.1:8089/{region}/api/v1" in text
        assert demo_key("a", region) in text and demo_key("b", region, 2) in text


def test_keys_from_a_users_file_are_masked_unless_asked(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text('{"accounts": {"mine": {"cn-beijing": [{"key": "sk-0123456789abcdef", "id": "k1"}]}}}')
    service = FakeDashScope(Config.load(keys_file=str(keys)))
    assert "sk-0123456789abcdef" not in banner(service, "http://h", show_keys=False)
    assert "sk-0***def" in banner(service, "http://h", show_keys=False)
    assert "sk-0123456789abcdef" in banner(service, "http://h", show_keys=True)


def test_bad_settings_exit_2_with_a_message(capsys, tmp_path):
    assert main(["serve", "--profile", "1999-01"]) == 2
    assert "unknown profile" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"timing": {"default": {"mode": "weeks"}}}')
    assert main(["serve", "--config", str(bad)]) == 2


def test_console_script_serves_the_sdk_paths_on_loopback(tmp_path):
    script = Path(sys.executable).with_name("dashscope-mock")
    port = _free_port()
    proc = subprocess.Popen([str(script), "serve", "--port", str(port), "--fast", "--profile", "2025-12"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # uvicorn logs on stderr
    try:
        first_line = proc.stdout.readline()
        assert f"profile 2025-12, serving http://127.0.0.1:{port}" in first_line
        base = f"http://127.0.0.1:{port}/ap-southeast-1/api/v1"
        ready = threading.Event()
        for _ in range(200):  # waiting for the process to bind its port, not for clock behaviour
            try:
                httpx.get(f"http://127.0.0.1:{port}/__admin/clock", timeout=1)
                break
            except httpx.TransportError:
                ready.wait(0.05)
        key = demo_key("a", "ap-southeast-1")
        created = httpx.post(f"{base}/services/aigc/text2image/image-synthesis", timeout=5,
                             headers={"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"},
                             json={"model": "qwen-image", "input": {"prompt": "a cat"}, "parameters": {"size": "1140*1472"}})
        assert created.status_code == 200, created.text
        task = httpx.get(f"{base}/tasks/{created.json()['output']['task_id']}", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert task.json()["output"]["task_status"] == "SUCCEEDED"  # --fast: done on the first poll
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
