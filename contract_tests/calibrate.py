"""`dashscope-contract calibrate RECORDING`: a recorded run of the real service becomes a timing
configuration for the fake (`dashscope-mock serve --config FILE`), so that the fake's tasks queue
and run about as long as the service's did.

Each model with at least one finished task (SUCCEEDED or FAILED, with submit, scheduled and end
times) gets {"mode": "time", "pending": median queue seconds, "running": median run seconds}. The
median, because the fake gives every task of a model one length per phase, and the typical task is
what that length should be: one task stuck in a busy queue must not make every fake task wait as
long, and with one or two tasks the median is simply what was seen. Other models keep the default.
"""

from __future__ import annotations

import json
import statistics
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cassette import load
from .timing import UNKNOWN_MODEL, TaskLog, durations
from .timing_report import shipped_timing

DECIMALS = 1  # tenths of a second: finer than any poll interval, and end_time may have only whole seconds


class NothingToCalibrate(ValueError):
    """The recording holds no finished task of a named model."""


@dataclass(frozen=True)
class Calibrated:
    model: str
    pending: float
    running: float
    queued: int    # tasks whose queue time was seen
    finished: int  # tasks whose run time was seen


def calibrate(log: TaskLog, default: dict[str, Any]) -> tuple[list[Calibrated], dict[str, str]]:
    """The calibrated models, and the models left at the default with why."""
    calibrated, kept = [], {}
    for model, phases in sorted(durations(log).items()):
        if model == UNKNOWN_MODEL:
            kept[model] = "its tasks' model is not in the recording"
        elif not phases["run"]:
            kept[model] = "no task finished"
        else:
            queue = phases["queue"]
            pending = statistics.median(queue) if queue else float(default.get("pending", 0))
            calibrated.append(Calibrated(model, round(pending, DECIMALS), round(statistics.median(phases["run"]), DECIMALS),
                                         len(queue), len(phases["run"])))
    if not calibrated:
        raise NothingToCalibrate("no finished task of a named model (an answer with submit_time, scheduled_time and end_time)")
    return calibrated, kept


def read_config(path: str | Path) -> dict[str, Any]:
    """A config file as `dashscope-mock serve --config` reads it (JSON, or TOML by its suffix),
    refused if the fake would refuse it."""
    from mock_server.config import Config

    Config.load(path)
    text = Path(path).read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text)
    return data


def config_with(base: dict[str, Any], calibrated: list[Calibrated], source: str) -> dict[str, Any]:
    """`base` (a whole config, or {}) with the calibrated models' timing. Without a base only the
    timing is written: serve --config merges it over the fake's defaults."""
    timing = base.get("timing") or {}
    models = dict(timing.get("models") or {})
    models.update({c.model: {"mode": "time", "pending": c.pending, "running": c.running} for c in calibrated})
    comment = (f"timing calibrated by dashscope-contract calibrate from {source}: per model the median queue and run"
               " seconds of its finished tasks")
    return {**base, "$comment": comment,
            "timing": {"default": timing.get("default") or shipped_timing()["default"], "models": models}}


def summary(calibrated: list[Calibrated], kept: dict[str, str], source: str) -> list[str]:
    lines = [f"calibrated {len(calibrated)} model(s) from {source} (median of each phase):"]
    lines += [f"  {c.model}: pending {c.pending:g} s (of {c.queued} task(s)), running {c.running:g} s (of {c.finished} task(s))"
              for c in calibrated]
    lines += [f"  {model}: kept the default ({why})" for model, why in kept.items()]
    return lines


def run(recording: str, *, out: str | None = None, base: str | None = None) -> int:
    """The command: exit 0 with the config written (to `out`, else stdout), 2 when there is
    nothing to calibrate or an input cannot be read (one line on stderr)."""
    try:
        base_config = read_config(base) if base else {}
        calibrated, kept = calibrate(TaskLog.of(load(recording)), (base_config.get("timing") or shipped_timing())["default"])
    except NothingToCalibrate as nothing:
        print(f"dashscope-contract calibrate: {recording} holds {nothing}: nothing to calibrate", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # no such file, not a cassette, a base config the fake would refuse
        print(f"dashscope-contract calibrate: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(config_with(base_config, calibrated, recording), indent=2, ensure_ascii=False) + "\n"
    lines = summary(calibrated, kept, recording)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print("\n".join(lines + [f"wrote {out}: dashscope-mock serve --config {out}"]))
    else:
        print("\n".join(lines), file=sys.stderr)
        sys.stdout.write(text)
    return 0
