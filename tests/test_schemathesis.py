"""/openapi.json against the fake: what the document calls a valid request body passes the catalog's
rules (but for the one rule it cannot carry), and the README's Schemathesis command, as written
there, runs green against the fake as `serve` starts it."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

import dashscope_schemas as ds
import httpx
import pytest
import schemathesis
from helpers import REPO, demo_key
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator

from mock_server.openapi import openapi_document

README_ORIGIN = "http://127.0.0.1:8089"  # where the README's command expects the fake
EXAMPLES = 10  # test cases per operation and phase: every phase reaches every operation in about 15 s on 2 cores
# A fixed seed: the same requests every run. This one also sends /uploads a model outside the
# catalog within EXAMPLES (negative_data_rejection failed there while the document listed the catalog).
SEED = 2
CATALOG = ds.load_catalog()
DOCUMENT = openapi_document()


def _area_rule(model: ds.Model) -> bool:
    """The model's size rule is one JSON Schema cannot carry (a pixel area: no enum, no pattern)."""
    return "size" in model.parameters and not {"enum", "pattern"} & set(model.size_rule.json_schema())


@pytest.mark.parametrize("endpoint", list(CATALOG.generation_endpoints))
def test_bodies_the_document_calls_valid_pass_the_catalogs_rules(endpoint):
    """Schemathesis's own generator, positive data only: every body passes check_request, but for a
    size outside a pixel area (the reason the README gives for leaving positive_data_acceptance out,
    with image data that is no image and oss:// keys nobody uploaded, which check_request leaves to
    the service)."""
    operation = schemathesis.openapi.from_dict(DOCUMENT)[CATALOG.endpoints[endpoint].path]["POST"]
    refused: list[tuple[str, str]] = []

    @settings(max_examples=60, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    def check(case):
        verdict = CATALOG.check_request(endpoint, case.body, dict(case.headers or {}))
        model = CATALOG.model(case.body["model"])
        if verdict.error and not (verdict.error.rule == "size-rule" and model is not None and _area_rule(model)):
            refused.append((case.body["model"], verdict.error.message))

    check()
    assert refused == []


def test_an_upload_policy_is_documented_for_any_model():
    """The service gives a policy for any model (observation upload-policy-any-model), so the
    document does not narrow `model` to the image catalog; an empty one is refused."""
    [model] = [p for p in DOCUMENT["paths"]["/uploads"]["get"]["parameters"] if p["name"] == "model"]
    validator = Draft202012Validator(model["schema"])
    assert validator.is_valid("qwen-vl-plus") and not validator.is_valid("")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_command() -> str:
    """The one `schemathesis run ...` command of README.md."""
    [command] = re.findall(r"`(schemathesis run [^`]+)`", (REPO / "README.md").read_text(encoding="utf-8"))
    return command


def test_the_readme_schemathesis_command_passes_against_serve(tmp_path):
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    with open(tmp_path / "fake.log", "w") as log:
        fake = subprocess.Popen([sys.executable, "-m", "mock_server.cli", "serve", "--port", str(port)],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(400):  # waiting for the process to bind its port, not for clock behaviour
            try:
                httpx.get(f"{origin}/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        command = readme_command().replace(README_ORIGIN, origin).replace("<key>", demo_key("a", "cn-beijing"))
        argv = shlex.split(command)
        assert argv[:2] == ["schemathesis", "run"] and "<" not in command
        argv[0] = str(Path(sys.executable).with_name("schemathesis"))
        # In tmp_path: the run's .schemathesis/ and .hypothesis/ folders land there, not in the checkout.
        run = subprocess.run([*argv, "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--no-color"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    finally:
        fake.terminate()
        fake.wait(timeout=10)
