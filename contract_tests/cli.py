"""dashscope-contract: run the contract suite, plan a run (dry run, with its cost), re-check a
recording offline, or compare two recordings.

    dashscope-contract run [--profile P] [--region R] [--models a,b] [--budget-images N]
                           [--budget-usd X] [--target KIND] [--fail-on SEVERITY]
                           [--record DIR] [--report DIR] [--max-examples N] [-- pytest args]
    dashscope-contract plan [same options]          # = run --dry-run: the requests and their cost
    dashscope-contract recheck RECORDING [--profile P] [--report DIR]
    dashscope-contract diff RECORDING_A RECORDING_B [--out FILE]
    dashscope-contract calibrate RECORDING [--out FILE] [--base CONFIG]   # task times -> the fake's timing

The target and keys come from the environment only, never from the command line (shell
history): DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY (unset: the embedded fake), and
DASHSCOPE_CONTRACT_OTHER_ACCOUNT_KEY / DASHSCOPE_CONTRACT_OTHER_REGION_KEY for the isolation checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import missing_dependencies
from .settings import FAIL_ON, TARGET_KINDS

ENV_OPTIONS = {"profile": "PROFILE", "region": "REGION", "models": "MODELS", "budget_images": "BUDGET_IMAGES",
               "budget_usd": "BUDGET_USD", "record": "RECORD", "report": "REPORT_DIR", "max_examples": "MAX_EXAMPLES",
               "task_timeout": "TASK_TIMEOUT", "target": "TARGET", "fail_on": "FAIL_ON"}


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="the API profile to check against: current (default) or 2025-12")
    parser.add_argument("--region", help="the region of the target (default: from the base URL)")
    parser.add_argument("--models", help="comma-separated models to cover (default: all of the profile)")
    parser.add_argument("--budget-images", type=int, help="never generate more images than this")
    parser.add_argument("--budget-usd", type=float,
                        help="never spend more than this, at the catalog's prices (default: US$1 against a target that may"
                             " bill, the real service or an unknown server; none against a fake)")
    parser.add_argument("--target", choices=TARGET_KINDS,
                        help="what the target is, instead of detecting it: embedded (start the fake here), fake (a fake"
                             " with the admin API), real (the billed service), unknown (no admin API: treated as billed)")
    parser.add_argument("--fail-on", choices=FAIL_ON,
                        help="the least severity that fails the run: warning (default: any drift) or breaking")
    parser.add_argument("--record", help="save every exchange (keys masked) to DIR/cassette.jsonl")
    parser.add_argument("--report", help="where report.md and report.json go (default ./contract-report)")
    parser.add_argument("--max-examples", type=int, help="Hypothesis examples per generated test (default 25)")
    parser.add_argument("--task-timeout", type=float, help="seconds a task may take on a target without an admin clock")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dashscope-contract", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the contract suite")
    _run_options(run)
    run.add_argument("--dry-run", action="store_true", help="print the planned requests and their cost, send nothing")
    run.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (e.g. -k generated -x)")
    plan = commands.add_parser("plan", help="= run --dry-run")
    _run_options(plan)
    recheck = commands.add_parser("recheck", help="re-check a recording offline against the schemas of a profile")
    recheck.add_argument("recording", help="a cassette.jsonl or a directory holding one")
    recheck.add_argument("--profile", default="current")
    recheck.add_argument("--report", default="contract-report")
    diff = commands.add_parser("diff", help="compare two recordings on normalised shapes")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--out", help="also write the Markdown to this file")
    calibrate = commands.add_parser("calibrate", help="a recording's task times -> a timing config for dashscope-mock serve --config")
    calibrate.add_argument("recording", help="a cassette.jsonl or a directory holding one")
    calibrate.add_argument("--out", help="write the config here (default: standard output)")
    calibrate.add_argument("--base", help="a config file (JSON or TOML) to start from (default: only the timing, over the fake's defaults)")
    return parser


def _export(args: argparse.Namespace) -> None:
    for attr, name in ENV_OPTIONS.items():
        value = getattr(args, attr, None)
        if value is not None:
            os.environ["DASHSCOPE_CONTRACT_" + name] = str(value)


def plan() -> int:
    """Print what a run would send, with its estimated cost and what the budget cuts; send nothing."""
    import dashscope_schemas as ds

    from .exchange import Exchange
    from .plan import plan_estimate
    from .settings import Settings
    from .targets import KIND_WORDS, detect_kind

    settings = Settings.from_env()
    catalog = ds.load_catalog(settings.profile)
    kind, _ = detect_kind(settings)
    base = settings.base_url or "http://127.0.0.1:PORT/cn-beijing/api/v1"
    estimate = plan_estimate(settings, kind)
    limit = ("no money budget" if estimate.budget_usd is None else f"budget ${estimate.budget_usd:.2f}") + (
        f", {estimate.budget_images} images" if estimate.budget_images is not None else "")
    print(f"# dashscope-contract plan: {base} ({KIND_WORDS[kind]}), profile {settings.profile}, region {estimate.region},"
          f" {limit}{' (cheapest choices)' if kind in ('real', 'unknown') else ''}")
    for line in estimate.lines:
        fits = "fits" if line.fits else "CUT by the budget"
        if line.case is None:
            print(f"\n# {line.label}: {line.images} image(s), ${line.usd:.4f}: {fits} (drawn at run time)")
            continue
        case = line.case
        verdict = "accept" if case.expect.accepted else f"{case.expect.status} {case.expect.code}"
        headers = {**case.headers, "Content-Type": "application/json",
                   **({"Authorization": "Bearer $DASHSCOPE_API_KEY"} if case.key == "default" else {})}
        exchange = Exchange("POST", base + catalog.endpoints[case.endpoint].path, case.endpoint, headers, case.body, 0, {}, None)
        print(f"\n# {case.id}: expect {verdict}; {line.images} image(s), ${line.usd:.4f}: {fits}\n{exchange.curl()}")
    cut = estimate.cut
    print(f"\n# plan: {len(estimate.lines)} requests, {sum(line.images for line in estimate.lines)} images,"
          f" about ${estimate.total_usd:.2f}; {limit}: ${estimate.fitting_usd:.2f} fits,"
          f" {len(cut)} request(s) cut (${sum(line.usd for line in cut):.2f})")
    if cut:
        print("# cut: " + ", ".join(line.label for line in cut[:20]) + (" ..." if len(cut) > 20 else ""))
        print("# a run that cuts requests ends NOT CHECKED (exit 2): raise --budget-usd or narrow --models")
    print("# invalid requests are refused and free; prices the docs do not give count as the dearest documented one.")
    return 0


def _exit_code(report_path: Path, pytest_code: int, fail_severities: tuple[str, ...]) -> int:
    """0: every planned check ran and nothing drifted (at --fail-on's severity); 1: drift;
    2: could not check (stopped, budget, transport errors, nothing run)."""
    if not report_path.is_file():
        return 2
    data = json.loads(report_path.read_text(encoding="utf-8"))
    if any(v.get("severity", "breaking") in fail_severities for v in data["violations"]):
        return 1
    if "not_checked" in data["meta"] or pytest_code not in (0, 1):
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = missing_dependencies()
    if missing is not None:
        print(f"dashscope-contract: {missing}", file=sys.stderr)
        return 2
    if args.command in ("run", "plan"):
        _export(args)
        if args.command == "plan" or args.dry_run:
            try:
                return plan()
            except BrokenPipeError:  # `| head` closed the pipe: not an error
                sys.stderr.close()
                return 0
        import pytest

        from .preflight import preflight
        from .report import not_checked
        from .settings import Settings
        from .targets import KIND_WORDS, detect_kind

        settings = Settings.from_env()
        try:
            kind, _ = detect_kind(settings)
            reason = preflight(settings)
        except ValueError as error:
            kind, reason = settings.target or "unknown", str(error)
        if reason is not None:
            _, md_path = not_checked(settings.report_dir, {"target": settings.base_url, "target_kind": kind,
                                                           "profile": settings.profile, "drift": False}, reason)
            print(f"NOT CHECKED: {reason} ({md_path})")
            return 2
        os.environ["DASHSCOPE_CONTRACT_TARGET"] = kind  # the run (collection included) follows the detected kind
        budget = settings.budget_usd_for(kind)
        print(f"dashscope-contract: target: {KIND_WORDS[kind]}, {settings.base_url or 'started here'}"
              + (f"; money budget ${budget:.2f} (--budget-usd)" if budget is not None else ""))
        if settings.embedded and settings.api_key:
            print("dashscope-contract: the embedded fake is the target; the key in DASHSCOPE_API_KEY is ignored")
        # The installed suite by its absolute directory, whatever directory this runs in: pytest
        # loads conftests from its arguments as paths before resolving --pyargs, so in a checkout
        # "contract_tests" would name the working tree's copy next to the installed one.
        (settings.report_dir / "report.json").unlink(missing_ok=True)  # never judge by an earlier run's report
        suite = str(Path(__file__).resolve().parent)
        code = int(pytest.main(["-p", "no:cacheprovider", "-q", "--rootdir", suite, "-c", os.devnull, suite, *args.pytest_args]))
        return _exit_code(settings.report_dir / "report.json", code, settings.fail_severities)
    if args.command == "recheck":
        from . import cassette

        reporter, json_path, md_path = cassette.write_recheck(args.recording, args.profile, args.report)
        print(f"{'DRIFT' if reporter.drift else 'no drift'}: {md_path} and {json_path}")
        return 1 if reporter.drift else 0
    if args.command == "diff":
        from . import recording_diff

        result = recording_diff.diff(args.a, args.b, labels=(args.a, args.b))
        text = recording_diff.diff_markdown(result)
        print(text)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        return 0 if result["same"] else 1
    if args.command == "calibrate":
        from .calibrate import run as calibrate_from

        return calibrate_from(args.recording, out=args.out, base=args.base)
    return 2


if __name__ == "__main__":
    sys.exit(main())
