"""The pytest plugin as an app's suite uses it: a test file with no conftest, only the
`dashscope_fake` fixture (registered by the kit's pytest11 entry point) and its handle, run in
its own pytest process (pytester), with a real-looking key exported and the real hosts out of
reach (nothing here can reach them: the machine has no route out, and the plugin points the SDK
away from them)."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

REAL_LOOKING_KEY = "sk-0123456789abcdef0123456789abcdef"

APP_TESTS = '''
import asyncio
import os
import time

import dashscope
import pytest
from dashscope import ImageSynthesis, MultiModalConversation
from dashscope.aigc.image_synthesis import AioImageSynthesis

REAL_KEY = "{real_key}"
PROMPT = "a red boat on a calm lake"


def test_blocking_call_with_realistic_timing_moves_the_fakes_clock(dashscope_fake):
    assert os.environ["DASHSCOPE_API_KEY"] == dashscope_fake.api_key != REAL_KEY
    assert dashscope.base_http_api_url == dashscope_fake.base_url
    wall = time.time()
    answer = ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT, n=1)
    assert answer.status_code == 200 and answer.output.task_status == "SUCCEEDED", answer
    assert len(answer.output.results) == 1 and answer.output.results[0].url.startswith(dashscope_fake.url)
    # The SDK's polling pauses moved the fake's clock by the task's 16 s, not the test's.
    assert dashscope_fake.now() - wall >= 15


def test_async_call_then_wait_and_the_asyncio_client(dashscope_fake):
    task = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT)
    assert task.output.task_status == "PENDING"
    assert ImageSynthesis.wait(task).output.task_status == "SUCCEEDED"

    async def aio():
        return await AioImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT)

    assert asyncio.run(aio()).output.task_status == "SUCCEEDED"
    assert [r["endpoint"] for r in dashscope_fake.requests("text2image")] == ["text2image", "text2image"]


def test_a_failure_scenario_then_the_journal(dashscope_fake):
    with dashscope_fake.scenario({{"type": "reject", "error": "arrearage"}}, match={{"endpoint": "text2image"}}, times=1) as s:
        refused = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT)
        assert (refused.status_code, refused.code) == (400, "Arrearage")
        assert s.applied == 1 and s.remaining == 0
    assert dashscope_fake.scenarios() == []
    accepted = ImageSynthesis.async_call(model="qwen-image-plus", prompt="second", negative_prompt="fog")
    assert accepted.status_code == 200
    sent = dashscope_fake.requests("text2image")
    assert [r["status"] for r in sent] == [400, 200]
    assert sent[1]["body"]["input"] == {{"prompt": "second", "negative_prompt": "fog"}}
    assert sent[1]["method"] == "POST" and sent[1]["region"] == "cn-beijing"
    assert "authorization" not in {{name.lower() for name in sent[1]["headers"]}}
    assert dashscope_fake.api_key not in str(sent)


def test_a_task_is_unknown_a_day_later(dashscope_fake):
    task = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT)
    dashscope_fake.advance(24 * 3600 + 1)
    assert ImageSynthesis.fetch(task).output.task_status == "UNKNOWN"


def test_another_regions_key_and_base_url(dashscope_fake):
    singapore = dashscope_fake.key(region="ap-southeast-1")
    refused = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=singapore)
    assert (refused.status_code, refused.code) == (401, "InvalidApiKey")
    dashscope.base_http_api_url = dashscope_fake.base_url_for("ap-southeast-1")  # put back by the fixture
    accepted = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT, api_key=singapore)
    assert accepted.status_code == 200
    assert [r["region"] for r in dashscope_fake.requests()] == ["cn-beijing", "ap-southeast-1"]


def test_usage_and_tasks(dashscope_fake):
    ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT)
    ImageSynthesis.call(model="qwen-image-plus", prompt=PROMPT, api_key=dashscope_fake.key(account="b"))
    edit = [{{"role": "user", "content": [{{"image": "https://img.example.com/i/a-tps-1600-900.jpg"}}, {{"text": "make it blue"}}]}}]
    edited = MultiModalConversation.call(model="qwen-image-edit-plus", messages=edit, n=2)
    assert edited.status_code == 200, edited
    lines = dashscope_fake.usage()
    assert [(line["account"], line["model"], line["images"]) for line in lines] == [
        ("demo-account-a", "qwen-image-edit-plus", 2), ("demo-account-a", "qwen-image-plus", 1),
        ("demo-account-b", "qwen-image-plus", 1)]
    assert lines[0]["cost_usd"] > 0 and lines[1]["cost_usd"] is None  # qwen-image-plus: no price on the pages
    tasks = dashscope_fake.tasks()
    assert [(t["account"], t["model"], t["task_status"]) for t in tasks] == [
        ("demo-account-b", "qwen-image-plus", "SUCCEEDED"), ("demo-account-a", "qwen-image-plus", "SUCCEEDED")]


def test_reset_before_each_test(dashscope_fake):
    assert dashscope_fake.requests() == [] and dashscope_fake.usage() == [] and dashscope_fake.tasks() == []


def test_sdk_2_client_in_process(dashscope_fake):
    with dashscope.Client(http_client=dashscope_fake.http_client(), max_retries=0) as client:
        job = client.images.generate(model="qwen-image-plus", prompt=PROMPT)
    assert job.succeeded and len(job.image_urls) == 1
    assert [r["endpoint"] for r in dashscope_fake.requests()][0] == "text2image"


@pytest.mark.dashscope_fake(fast=True, scenarios=[{{"effect": {{"type": "task_failed", "code": "InternalError",
                                                              "message": "boom"}}, "match": {{"model": "qwen-image-plus"}}}}])
def test_marker_fast_and_scenarios(dashscope_fake):
    task = ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT)
    done = ImageSynthesis.fetch(task)
    assert done.output.task_status == "FAILED" and done.output.code == "InternalError"


@pytest.mark.dashscope_fake(rate_limits=True)
def test_marker_rate_limits(dashscope_fake):
    answers = [ImageSynthesis.async_call(model="qwen-image-plus", prompt=PROMPT).status_code for _ in range(4)]
    assert 429 in answers


def test_the_sdk_points_away_from_the_fake_after_the_tests():
    assert os.environ.get("DASHSCOPE_API_KEY") == REAL_KEY
    assert "DASHSCOPE_HTTP_BASE_URL" not in os.environ and "DASHSCOPE_BASE_URL" not in os.environ
    assert dashscope.base_http_api_url != "" and "127.0.0.1" not in dashscope.base_http_api_url
    assert dashscope.api_key in (None, REAL_KEY)
'''


@pytest.mark.parametrize("proxy", [None, "http://127.0.0.1:9"], ids=["no-proxy", "proxy-to-nowhere"])
def test_an_apps_suite_uses_the_fixture_and_nothing_else(pytester, monkeypatch, proxy):
    """Also with a proxy that goes nowhere in the environment (one way to keep tests off the
    internet): the fake on loopback is reached directly."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", REAL_LOOKING_KEY)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    if proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("HTTPS_PROXY", proxy)
    for name in ("DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_app=textwrap.dedent(APP_TESTS.format(real_key=REAL_LOOKING_KEY)))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-W", "error", "-v")
    result.assert_outcomes(passed=11)


def test_the_marker_refuses_what_it_does_not_know(pytester):
    pytester.makepyfile(test_app='''
import pytest

@pytest.mark.dashscope_fake(profiles="current")
def test_typo(dashscope_fake):
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*dashscope_fake takes profile=, rate_limits=, fast=, scenarios= (got profiles)*"])


def test_the_kits_own_dependencies_bring_no_test_framework():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for dep in project["dependencies"]}
    assert not names & {"pytest", "hypothesis", "hypothesis-jsonschema"}, names
    assert {"pytest", "hypothesis", "hypothesis-jsonschema"} <= {
        dep.split(">")[0].split("<")[0].strip() for dep in project["optional-dependencies"]["contract"]}
    assert project["entry-points"]["pytest11"]["dashscope_fake"] == "mock_server.pytest_plugin"


@pytest.mark.parametrize("command", [["run"], ["plan"]])
def test_the_contract_suite_without_its_extra_says_what_to_install(tmp_path, command):
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent('''
        import sys

        class _NoHypothesis:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("hypothesis", "hypothesis_jsonschema"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, _NoHypothesis())
    '''))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    env["PYTHONPATH"] = str(tmp_path)
    script = str(Path(sys.executable).with_name("dashscope-contract"))
    done = subprocess.run([script, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("dashscope-contract: the contract suite needs hypothesis, hypothesis-jsonschema:"
                                   " pip install 'dashscope-image-kit[contract]'")
