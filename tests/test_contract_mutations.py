"""The contract suite catches drift: run it against each mutant of the fake (tests/mutants.py,
one deliberate defect each) and against the fake serving an older API profile.

Each run is two processes, as a user would have them: the server (`python tests/mutants.py
NAME --port P`, or `python -m mock_server.cli serve`) and the suite (`pytest contract_tests`, without
Hypothesis shrinking, with DASHSCOPE_HTTP_BASE_URL pointing at the server). The faithful mutant must
pass with no drift; every other one must fail with drift, and the check named for its defect (the
first of its expected checks) must be among the violations of the report. A few models keep each run to a few seconds while
still reaching every defect: qwen-image-plus (sync and text2image tasks), qwen-image-edit-plus
(sizes rounded to 16) and wan2.5-i2i-preview (image2image tasks of several images).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import serving_process
from mutants import MUTANTS

from contract_tests.checks import CHECKS

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-demoabj1-0000000000000000"       # demo key of account a in cn-beijing
MODELS = "qwen-image-plus,qwen-image-edit-plus,wan2.5-i2i-preview"
# Generated examples per Hypothesis test: a defect shows on the first examples that reach it, and
# fewer keep each run short (the deterministic tests, catalog cases and test_tasks, reach every
# defect regardless).
MAX_EXAMPLES = "5"
SUITE_TIMEOUT = 300
# A defect is caught (and reported) by the first failing example; shrinking it to a minimal one
# adds nothing here and costs up to 15 s a run, so the suite runs with DASHSCOPE_CONTRACT_SHRINK=0.
# Mutants whose defect no check of the suite catches: a gap in the suite, named here (and in the
# report) rather than hidden by weakening the mutant. Empty: every defect is caught.
GAPS: dict[str, str] = {}


MUTANT_SERVER = [sys.executable, str(Path(__file__).with_name("mutants.py"))]
FAKE_SERVER = [sys.executable, "-m", "mock_server.cli", "serve"]


def _run_suite(origin: str, report_dir: Path, models: str, extra_env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    """The whole contract suite against `origin` (current profile): exit code, report.json, output."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DASHSCOPE_CONTRACT_") and k not in ("DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_API_KEY")}
    env.update({
        "DASHSCOPE_HTTP_BASE_URL": f"{origin}/cn-beijing/api/v1",
        "DASHSCOPE_API_KEY": KEY,
        "DASHSCOPE_CONTRACT_REPORT_DIR": str(report_dir),
        "DASHSCOPE_CONTRACT_MODELS": models,
        "DASHSCOPE_CONTRACT_MAX_EXAMPLES": MAX_EXAMPLES,
        "DASHSCOPE_CONTRACT_SHRINK": "0",
        **(extra_env or {}),
    })
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "contract_tests"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT, stdin=subprocess.DEVNULL)
    # The head too: when a session fixture fails, its traceback comes first and the tail is
    # only the list of errored tests.
    output = done.stdout[:4000] + ("\n[...]\n" + done.stdout[-3000:] if len(done.stdout) > 7000 else done.stdout[4000:]) \
        + done.stderr[-2000:]
    report_path = report_dir / "report.json"
    assert report_path.is_file(), f"the suite wrote no report (exit {done.returncode}):\n{output}"
    return done.returncode, json.loads(report_path.read_text(encoding="utf-8")), output


def _caught_by(report: dict) -> dict[str, int]:
    """Check name -> violation groups it reported."""
    caught: dict[str, int] = {}
    for violation in report["violations"]:
        caught[violation["check"]] = caught.get(violation["check"], 0) + 1
    return caught


def test_every_mutant_names_checks_that_exist():
    names = set(CHECKS)
    for name, mutant in MUTANTS.items():
        assert mutant.description, name
        assert set(mutant.expected_checks) <= names, (name, set(mutant.expected_checks) - names)
    assert MUTANTS["faithful"].expected_checks == ()
    assert sum(1 for m in MUTANTS.values() if m.expected_checks) >= 25


def test_every_observation_the_kit_follows_has_a_check():
    """Each followed (or agreed) row of observations.json names checks that exist: a target that
    does not do what the row says has a check to notice it (and the mutants prove most of them)."""
    from dashscope_schemas import evidence

    from contract_tests.checks import OBSERVATION_CHECKS

    rows = {key for key, o in evidence.observations().items() if o.decision in ("followed", "agrees")}
    assert rows == set(OBSERVATION_CHECKS), rows ^ set(OBSERVATION_CHECKS)
    for key, names in OBSERVATION_CHECKS.items():
        assert names and set(names) <= set(CHECKS), (key, set(names) - set(CHECKS))
    proven = {c for m in MUTANTS.values() for c in m.expected_checks[:1]}
    unproven = {key for key, names in OBSERVATION_CHECKS.items() if not set(names) & proven}
    assert not unproven, f"no mutant proves a check of {sorted(unproven)}"


def _cases():
    for name in MUTANTS:
        marks = [pytest.mark.xfail(strict=True, reason=GAPS[name])] if name in GAPS else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_cases()))
def test_the_suite_catches_the_mutant(name, tmp_path, record_property):
    mutant = MUTANTS[name]
    with serving_process([*MUTANT_SERVER, name], tmp_path / "server.log") as origin:
        code, report, output = _run_suite(origin, tmp_path / "report", MODELS)
    assert (tmp_path / "server.log").read_text(errors="replace").startswith(f"dashscope-mock mutant {name} ("), "no banner line"
    caught = _caught_by(report)
    record_property("caught_by", caught)
    print(f"\n{name}: exit {code}, drift {report['meta']['drift']}, {report['meta'].get('seconds')} s, caught by {caught}")
    if mutant.faithful:
        assert code == 0, f"the suite fails against the faithful fake:\n{output}"
        assert report["meta"]["drift"] is False and report["violations"] == [], caught
        return
    assert code == pytest.ExitCode.TESTS_FAILED, f"the suite did not fail (or crashed) against {name} ({mutant.description}):\n{output}"
    assert report["meta"]["drift"] is True
    # The check named for the defect (the first expected) must be among those that caught it.
    assert mutant.expected_checks[0] in caught, (
        f"{name} ({mutant.description}) was caught by {sorted(caught)}, not by {mutant.expected_checks[0]}")


def test_an_older_profile_fails_the_current_contract(tmp_path):
    """(b) The fake serving the 2025-12 profile, checked against the current one: the documented
    differences show up as violations, each under the field it concerns."""
    models = "qwen-image-plus,qwen-image-edit-plus,qwen-image-edit-max"
    with serving_process([*FAKE_SERVER, "--profile", "2025-12"], tmp_path / "server.log") as origin:
        code, report, output = _run_suite(origin, tmp_path / "report", models)
    assert report["meta"]["profile"] == "current"
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert report["meta"]["drift"] is True
    found = {(v["model"], v["field"]) for v in report["violations"]}
    print(f"\n2025-12 served, current checked: {sorted(found)}")

    def requests_of(model: str, field: str) -> list[dict]:
        return [v["request"] for v in report["violations"] if (v["model"], v["field"]) == (model, field)]

    # qwen-image-edit-plus: size together with n > 1 was refused in 2025-12.
    assert any((r.get("parameters") or {}).get("n", 1) > 1 and "size" in (r.get("parameters") or {})
               for r in requests_of("qwen-image-edit-plus", "parameters.size")), sorted(found)
    # qwen-image-edit-max did not exist: Model not exist.
    assert requests_of("qwen-image-edit-max", "model"), sorted(found)
    assert any("Model not exist" in json.dumps(v["actual"]) + v["message"] for v in report["violations"]
               if (v["model"], v["field"]) == ("qwen-image-edit-max", "model"))
    # qwen-image-plus: 1472*1104 is a current size (2025-12 had 1472*1140).
    assert any((r.get("parameters") or {}).get("size") in ("1472*1104", "1104*1472")
               for r in requests_of("qwen-image-plus", "parameters.size")), sorted(found)


def test_keys_never_appear_in_output_reports_or_recordings(tmp_path):
    """A failing run (so that curl commands, answers and Hypothesis draws are printed) with a
    recording: neither of the keys the suite used appears anywhere it wrote."""
    with serving_process([*MUTANT_SERVER, "wrong-status"], tmp_path / "server.log") as origin:
        code, report, output = _run_suite(origin, tmp_path / "report", "qwen-image-plus",
                                          {"DASHSCOPE_CONTRACT_RECORD": str(tmp_path / "recording")})
    assert code == pytest.ExitCode.TESTS_FAILED and report["violations"]
    written = [output, *(p.read_text(errors="replace") for p in (tmp_path / "report").iterdir()),
               (tmp_path / "recording" / "cassette.jsonl").read_text()]
    other_account = "sk-demobbj1-0000000000000000"  # found through the admin API for the isolation checks
    for text in written:
        assert KEY not in text and other_account not in text
    assert "sk-***" in written[-1] and "$DASHSCOPE_API_KEY" in "".join(written[1:3])


def test_fail_on_breaking_lets_a_warning_only_drift_pass(tmp_path):
    """A server whose only defect is a header (a warning) fails a default run and passes one with
    --fail-on breaking; both reports show the drift with its severity."""
    script = str(Path(sys.executable).with_name("dashscope-contract"))
    with serving_process([*MUTANT_SERVER, "tasks-json-without-charset"], tmp_path / "server.log") as origin:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
        env.update({"DASHSCOPE_HTTP_BASE_URL": f"{origin}/cn-beijing/api/v1", "DASHSCOPE_API_KEY": KEY,
                    "DASHSCOPE_CONTRACT_SHRINK": "0"})
        runs = {}
        for fail_on in ("warning", "breaking"):
            report = tmp_path / fail_on
            done = subprocess.run([script, "run", "--models", "qwen-image-plus", "--max-examples", MAX_EXAMPLES, "--fail-on", fail_on,
                                   "--report", str(report)], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=SUITE_TIMEOUT, stdin=subprocess.DEVNULL)
            runs[fail_on] = (done.returncode, json.loads((report / "report.json").read_text()), done.stdout[-3000:])
    for _code, report, output in runs.values():
        assert report["meta"]["drift"] is True, output
        assert {v["severity"] for v in report["violations"]} == {"warning"}, report["violations"]
        assert "content_type_as_observed" in _caught_by(report)
    assert runs["warning"][0] == 1 and runs["breaking"][0] == 0, {k: v[2] for k, v in runs.items()}
