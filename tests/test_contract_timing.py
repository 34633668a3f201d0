"""Tasks over time (contract_tests/timing.py, timing_report.py) and `dashscope-contract calibrate`
(calibrate.py): moves and phase lengths read from hand-made answers, the report's section and
findings, calibration of the real recording, and the round trip: a recording of the fake with a
known timing calibrates back to that timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import dashscope_schemas as ds
import pytest
from helpers import serving_process

from contract_tests import cli
from contract_tests.cassette import load
from contract_tests.exchange import Exchange
from contract_tests.report import Reporter
from contract_tests.timing import TaskLog, notes, parse_service_time, seconds_between, summarize
from contract_tests.timing_report import SHIPPED, judge_tasks, shipped_timing
from mock_server.config import Config
from mock_server.domain.tasks import Timing

REPO = Path(__file__).resolve().parent.parent
REAL = REPO / "fixtures" / "real" / "cassette.jsonl"
SCRIPT = str(Path(sys.executable).with_name("dashscope-contract"))
KEY = "sk-demoabj1-0000000000000000"  # demo key of account a in cn-beijing
START = datetime(2026, 1, 5, 10, 0, 0)
CONFIG = {"default": {"mode": "time", "pending": 1, "running": 15}, "models": {}}


def at(seconds: float) -> str:
    """A task time `seconds` after START, as the service prints it."""
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def created(task_id: str, model: str) -> Exchange:
    return Exchange("POST", "http://fake/api/v1/services/aigc/text2image/image-synthesis", "text2image", {},
                    {"model": model, "input": {"prompt": "a cat"}}, 200, {},
                    {"request_id": "r", "output": {"task_id": task_id, "task_status": "PENDING"}}, notes={"key": "default"})


def polled(task_id: str, status: str, key: str = "default", **times: str) -> Exchange:
    return Exchange("GET", f"http://fake/api/v1/tasks/{task_id}", "task-query", {}, None, 200, {},
                    {"request_id": "r", "output": {"task_id": task_id, "task_status": status, **times}}, notes={"key": key})


def finished(task_id: str, model: str, queue: float, run: float, status: str = "SUCCEEDED") -> list[Exchange]:
    """A task's life as the suite sees it: created, polled PENDING, RUNNING, then ended."""
    return [created(task_id, model), polled(task_id, "PENDING", submit_time=at(0)),
            polled(task_id, "RUNNING", submit_time=at(0), scheduled_time=at(queue)),
            polled(task_id, status, submit_time=at(0), scheduled_time=at(queue), end_time=at(queue + run))]


# --- reading answers -----------------------------------------------------------------------------


def test_moves_are_counted_per_model_self_moves_included():
    log = TaskLog.of(finished("t1", "qwen-image-plus", 1, 15) + [polled("t1", "SUCCEEDED")]
                     + finished("t2", "wan2.5-i2i-preview", 1, 50, status="FAILED"))
    assert dict(log.moves["qwen-image-plus"]) == {("PENDING", "PENDING"): 1, ("PENDING", "RUNNING"): 1,
                                                  ("RUNNING", "SUCCEEDED"): 1, ("SUCCEEDED", "SUCCEEDED"): 1}
    assert dict(log.moves["wan2.5-i2i-preview"]) == {("PENDING", "PENDING"): 1, ("PENDING", "RUNNING"): 1, ("RUNNING", "FAILED"): 1}
    assert not log.forbidden


def test_unknown_answers_and_what_another_key_sees_are_not_moves():
    """An expired id answers UNKNOWN, another account's key sees UNKNOWN (or, on a leaky target,
    whatever it is shown): none of it is a step of the task."""
    log = TaskLog.of([created("t1", "qwen-image-plus"), polled("t1", "UNKNOWN", key="other"), polled("t1", "SUCCEEDED", key="other"),
                      polled("t1", "RUNNING", submit_time=at(0), scheduled_time=at(1)), polled("t1", "UNKNOWN"),
                      polled("never-created", "UNKNOWN")])
    assert dict(log.moves) == {"qwen-image-plus": {("PENDING", "RUNNING"): 1}}
    assert set(log.tasks) == {"t1"}


def test_phase_lengths_count_min_median_p90_max():
    log = TaskLog.of(finished("a", "qwen-image-plus", 1, 10) + finished("b", "qwen-image-plus", 2, 20)
                     + finished("c", "qwen-image-plus", 3, 30) + finished("d", "qwen-image-plus", 4, 40)
                     + [created("e", "qwen-image-plus"), polled("e", "RUNNING", submit_time=at(0), scheduled_time=at(5))])
    [model] = summarize(log, CONFIG, source="test").models
    queue, run = model.phases["queue"], model.phases["run"]
    assert queue is not None and run is not None
    # A RUNNING task shows its queue time; only finished ones show a run time.
    assert (queue.count, queue.min, queue.median, queue.p90, queue.max) == (5, 1, 3, 5, 5)
    assert (run.count, run.min, run.median, run.p90, run.max) == (4, 10, 25, 40, 40)


def test_an_end_time_without_milliseconds_is_read():
    """Observation task-times-without-millis: '2024-03-02 22:22:21' next to '... 22:22:13.051'."""
    assert parse_service_time("2024-03-02 22:22:21") == datetime(2024, 3, 2, 22, 22, 21)
    assert seconds_between("2024-03-02 22:22:13.051", "2024-03-02 22:22:21") == pytest.approx(7.949)
    assert parse_service_time("22:22:21") is None and parse_service_time(None) is None
    log = TaskLog.of([created("t", "wanx-v1"), polled("t", "SUCCEEDED", submit_time="2024-03-02 22:22:13.026",
                                                      scheduled_time="2024-03-02 22:22:13.051", end_time="2024-03-02 22:22:21")])
    [model] = summarize(log, CONFIG, source="test").models
    assert model.phases["run"] is not None and model.phases["run"].median == pytest.approx(7.949)


def test_a_move_the_state_machine_lacks_is_a_breaking_state_graph_finding():
    going_back = polled("t1", "RUNNING", submit_time=at(0), scheduled_time=at(1))
    log = TaskLog.of(finished("t1", "qwen-image-plus", 1, 15) + [going_back])
    summary = summarize(log, CONFIG, source="test")
    [note] = [n for n in notes(log, summary) if n.check == "state_graph"]
    assert (note.severity, note.expected, note.actual) == ("breaking", ["SUCCEEDED"], "RUNNING")
    assert note.exchange is not None and note.exchange.url == going_back.url and note.exchange.model == "qwen-image-plus"
    [undocumented] = [m for m in summary.models[0].moves if not m.documented]
    assert (undocumented.before, undocumented.after) == ("SUCCEEDED", "RUNNING")


# --- judged against the fake's timing ------------------------------------------------------------


def test_a_median_beyond_the_tolerance_is_an_info_note_in_seconds():
    log = TaskLog.of([e for i, run in enumerate((29, 30, 31)) for e in finished(f"t{i}", "qwen-image-plus", 1.5, run)])
    summary = summarize(log, CONFIG, source="test")
    queue, run = summary.models[0].judgements
    assert (queue.verdict, queue.why) == ("agrees", "+0.5 s")  # within 1 s
    assert (run.verdict, run.configured, run.observed, run.why) == ("differs", 15, 30, "+15.0 s")
    [note] = notes(log, summary)
    assert (note.check, note.severity, note.field) == ("timing_drift", "info", "run time (end_time - scheduled_time)")
    assert "ran 30 s (median of 3)" in note.message and "configured for 15 s" in note.message
    assert note.expected == "15 s ± 3.75 s" and note.actual == "30 s"


def test_polls_mode_and_too_few_tasks_are_not_judged():
    log = TaskLog.of(finished("p", "qwen-image-plus", 40, 400) + finished("w", "wan2.5-i2i-preview", 40, 400))
    config = {"default": CONFIG["default"], "models": {"qwen-image-plus": {"mode": "polls", "pending": 1, "running": 2}}}
    summary = summarize(log, config, source="test", min_tasks=3)
    by_model = {m.model: m for m in summary.models}
    assert [j.verdict for j in by_model["qwen-image-plus"].judgements] == ["not judged", "not judged"]
    assert "counts polls" in by_model["qwen-image-plus"].judgements[0].why
    assert [j.why for j in by_model["wan2.5-i2i-preview"].judgements] == ["1 task(s) showed this phase, 3 needed"] * 2
    assert notes(log, summary) == []


def test_the_report_has_tasks_over_time_and_an_info_note_is_not_drift(tmp_path):
    catalog = ds.load_catalog("current")
    slow = TaskLog.of([e for i in range(3) for e in finished(f"t{i}", "qwen-image-plus", 1, 30)])
    reporter = Reporter()
    judge_tasks(reporter, slow, (CONFIG, "test config"), catalog, fake=True)
    json_path, md_path = reporter.write(tmp_path, {"target": "test", "exchanges": 12})
    report = json.loads(json_path.read_text())
    assert report["timing"]["models"][0]["model"] == "qwen-image-plus" and report["timing"]["min_tasks"] == 3
    assert [v["check"] for v in report["violations"]] == ["timing_drift"] and report["meta"]["drift"] is False
    markdown = md_path.read_text()
    assert "## Tasks over time" in markdown and "PENDING -> RUNNING ×3" in markdown and "differs: +15.0 s" in markdown
    assert report["checks"]["state_graph"] == {"passed": 1, "failed": 0}

    backwards = TaskLog.of(finished("t", "qwen-image-plus", 1, 15) + [polled("t", "PENDING")])
    reporter = Reporter()
    judge_tasks(reporter, backwards, (CONFIG, "test config"), catalog, fake=False)
    assert reporter.drift and {f.check for f in reporter.findings.values()} == {"state_graph"}
    assert next(iter(reporter.findings.values())).model == "qwen-image-plus"


# --- calibrate -----------------------------------------------------------------------------------


def test_calibrate_the_real_recording(tmp_path, capsys):
    """fixtures/real holds two finished tasks (wanx-v1, and wanx-style-repaint-v1 whose end_time has
    no milliseconds); qwen-mt-image's task was only created."""
    out = tmp_path / "calibrated.json"
    assert cli.main(["calibrate", str(REAL), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "qwen-mt-image: kept the default (no task finished)" in printed and f"--config {out}" in printed
    config = Config.load(out)  # what `dashscope-mock serve --config` does with it
    assert config.timing_for("wanx-v1") == Timing("time", 0.0, 30.7)  # 24.817 -> 24.831 -> 55.565
    assert config.timing_for("wanx-style-repaint-v1") == Timing("time", 0.0, 7.9)  # 13.051 -> 21
    assert config.timing_for("qwen-mt-image") == config.timing_for("") == Timing("time", 1, 15)
    assert config.timing_for("wan2.5-i2i-preview") == Timing("time", 1, 50)  # the fake's own default for it, kept


def test_calibrate_refuses_a_recording_without_a_finished_task(tmp_path, capsys):
    cassette = tmp_path / "cassette.jsonl"
    cassette.write_text("".join(json.dumps(e.to_record([])) + "\n" for e in finished("t", "qwen-image-plus", 1, 15)[:3]))
    assert cli.main(["calibrate", str(tmp_path), "--out", str(tmp_path / "out.json")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no finished task" in error and not (tmp_path / "out.json").exists()
    assert cli.main(["calibrate", str(tmp_path / "nowhere")]) == 2


def test_calibrate_over_a_base_config_keeps_the_rest(tmp_path, capsys):
    cassette = tmp_path / "cassette.jsonl"
    cassette.write_text("".join(json.dumps(e.to_record([])) + "\n" for e in finished("t", "qwen-image-plus", 2, 25)))
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"profile": "2025-12", "timing": {"default": {"mode": "polls", "pending": 1, "running": 2},
                                                                 "models": {"qwen-image": {"mode": "time", "pending": 9, "running": 9}}}}))
    assert cli.main(["calibrate", str(cassette), "--base", str(base)]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["profile"] == "2025-12" and written["timing"]["default"] == {"mode": "polls", "pending": 1, "running": 2}
    assert written["timing"]["models"] == {"qwen-image": {"mode": "time", "pending": 9, "running": 9},
                                           "qwen-image-plus": {"mode": "time", "pending": 2.0, "running": 25.0}}


# --- the round trip ------------------------------------------------------------------------------

# The fake's timing for the round trip; calibrated values must come back within TOLERANCE (the
# fake prints times truncated to milliseconds; calibrate rounds to 0.1 s).
KNOWN = {"qwen-image-plus": {"mode": "time", "pending": 3, "running": 20},
         "wan2.5-i2i-preview": {"mode": "time", "pending": 5, "running": 40}}
TOLERANCE = 1.0


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    """The catalog cases of two models, run by `dashscope-contract run --record` against the fake
    serving KNOWN; the directory holds record/cassette.jsonl and report/report.json. The suite
    moves the fake's clock (POST /__admin/clock/advance): nothing waits."""
    directory = tmp_path_factory.mktemp("round-trip")
    config = directory / "known.json"
    config.write_text(json.dumps({"timing": {"models": KNOWN}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    with serving_process([sys.executable, "-m", "mock_server.cli", "serve", "--config", str(config)], directory / "fake.log") as origin:
        env.update(DASHSCOPE_HTTP_BASE_URL=f"{origin}/cn-beijing/api/v1", DASHSCOPE_API_KEY=KEY, DASHSCOPE_CONTRACT_SHRINK="0")
        done = subprocess.run([SCRIPT, "run", "--models", ",".join(KNOWN), "--record", str(directory / "record"),
                               "--report", str(directory / "report"), "--", "-k", "test_catalog_case"],
                              cwd=directory, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return directory


def test_round_trip_a_recording_of_the_fake_calibrates_back_to_its_timing(recorded_run, tmp_path):
    out = tmp_path / "calibrated.json"
    assert cli.main(["calibrate", str(recorded_run / "record"), "--out", str(out)]) == 0
    calibrated = json.loads(out.read_text())["timing"]["models"]
    assert set(calibrated) == set(KNOWN)
    for model, known in KNOWN.items():
        assert calibrated[model]["mode"] == "time"
        assert calibrated[model]["pending"] == pytest.approx(known["pending"], abs=TOLERANCE), model
        assert calibrated[model]["running"] == pytest.approx(known["running"], abs=TOLERANCE), model


def test_round_trip_the_run_s_report_compares_with_the_fake_s_own_timing(recorded_run):
    report = json.loads((recorded_run / "report" / "report.json").read_text())
    timing = {m["model"]: m for m in report["timing"]["models"]}
    assert "GET /__admin/timing" in report["timing"]["config_source"]
    for model, known in KNOWN.items():
        assert timing[model]["configured"] == known  # read from the fake, not the shipped defaults
        assert [j["verdict"] for j in timing[model]["judgements"]] == ["agrees", "agrees"], timing[model]
        assert all(m["documented"] for m in timing[model]["moves"])
    assert not [v for v in report["violations"] if v["check"] in ("timing_drift", "state_graph")]
    assert "## Tasks over time" in (recorded_run / "report" / "report.md").read_text()


def test_round_trip_the_same_tasks_against_the_shipped_defaults_drift(recorded_run):
    """What a run of this fake would say next to an unconfigured fake (pending 1; running 15, 50 for wan2.5)."""
    summary = summarize(TaskLog.of(load(recorded_run / "record")), shipped_timing(), source=SHIPPED, min_tasks=3)
    verdicts = {(m.model, j.phase): j.verdict for m in summary.models for j in m.judgements}
    assert verdicts == {("qwen-image-plus", "queue"): "differs", ("qwen-image-plus", "run"): "differs",
                        ("wan2.5-i2i-preview", "queue"): "differs",
                        ("wan2.5-i2i-preview", "run"): "agrees"}  # 40 s against 50 s: within a quarter
