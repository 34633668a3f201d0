"""dashscope-contract: run the contract suite, plan a run (dry run, with its cost), re-check a
recording offline, or compare two recordings.

    dashscope-contract run [--profile P] [--region R] [--models a,b] [--budget-images N]
                           [--budget-usd X] [--record DIR] [--report DIR] [--max-examples N] [-- pytest args]
    dashscope-contract plan [same options]          # = run --dry-run: the requests and their cost
    dashscope-contract recheck RECORDING [--profile P] [--report DIR]
    dashscope-contract diff RECORDING_A RECORDING_B [--out FILE]

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

ENV_OPTIONS = {"profile": "PROFILE", "region": "REGION", "models": "MODELS", "budget_images": "BUDGET_IMAGES",
               "budget_usd": "BUDGET_USD", "record": "RECORD", "report": "REPORT_DIR", "max_examples": "MAX_EXAMPLES",
               "task_timeout": "TASK_TIMEOUT"}


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="the API profile to check against: current (default) or 2025-12")
    parser.add_argument("--region", help="the region of the target (default: from the base URL)")
    parser.add_argument("--models", help="comma-separated models to cover (default: all of the profile)")
    parser.add_argument("--budget-images", type=int, help="never generate more images than this")
    parser.add_argument("--budget-usd", type=float, help="never spend more than this, at the catalog's prices")
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
    return parser


def _export(args: argparse.Namespace) -> None:
    for attr, name in ENV_OPTIONS.items():
        value = getattr(args, attr, None)
        if value is not None:
            os.environ["DASHSCOPE_CONTRACT_" + name] = str(value)


def plan() -> int:
    """Print what a run would send, with its estimated cost; send nothing."""
    import dashscope_schemas as ds

    from .cases import catalog_cases
    from .client import Budget
    from .exchange import Exchange
    from .settings import Settings

    settings = Settings.from_env()
    catalog = ds.load_catalog(settings.profile)
    base = settings.base_url or "http://127.0.0.1:PORT/cn-beijing/api/v1 (the embedded fake)"
    region = settings.case_region(catalog)
    real = settings.points_at_real_service
    models = list(settings.models) or sorted(catalog.models)
    cases = catalog_cases(catalog, models, region, cheap=real, has_other_region_key=bool(settings.other_region_key) or not real)
    budget = Budget(None, None, region, catalog)
    total_images, total_cost = 0, 0.0
    print(f"# dashscope-contract plan: {base}, profile {settings.profile}, region {region}"
          f"{' (real service: cheapest choices)' if real else ''}")
    for case in cases:
        cost = case.spend * budget.price(case.model)
        total_images += case.spend
        total_cost += cost
        verdict = "accept" if case.expect.accepted else f"{case.expect.status} {case.expect.code}"
        url = (settings.base_url or "http://127.0.0.1:PORT/cn-beijing/api/v1") + catalog.endpoints[case.endpoint].path
        headers = {**case.headers, "Content-Type": "application/json",
                   **({"Authorization": "Bearer $DASHSCOPE_API_KEY"} if case.key == "default" else {})}
        exchange = Exchange("POST", url, case.endpoint, headers, case.body, 0, {}, None)
        print(f"\n# {case.id}: expect {verdict}; {case.spend} image(s), ${cost:.4f}\n{exchange.curl()}")
    cheapest = min((budget.price(m) * catalog.models[m].n.min for m in models), default=0.0)
    generated = settings.max_examples
    tasks = 4 + min(settings.max_examples, 10)
    print(f"\n# catalog cases: {len(cases)} requests, {total_images} images, about ${total_cost:.2f}")
    print(f"# generated valid requests: up to {generated} more, about ${generated * cheapest:.2f} at the cheapest model"
          f" (invalid ones are refused and free)")
    print(f"# task lifecycle and state machine: about {tasks} more tasks, about ${tasks * cheapest:.2f}")
    print("# a budget (--budget-images / --budget-usd) stops the run before it spends more; prices not printed by the"
          " docs count as the dearest documented one.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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

        settings = Settings.from_env()
        if settings.embedded and settings.api_key:
            print("dashscope-contract: the embedded fake is the target; the key in DASHSCOPE_API_KEY is ignored")
        reason = preflight(settings)
        if reason is not None:
            _, md_path = not_checked(settings.report_dir, {"target": settings.base_url, "profile": settings.profile,
                                                           "drift": False}, reason)
            print(f"NOT CHECKED: {reason} ({md_path})")
            return 2
        # The installed suite by its absolute directory, whatever directory this runs in: pytest
        # loads conftests from its arguments as paths before resolving --pyargs, so in a checkout
        # "contract_tests" would name the working tree's copy next to the installed one.
        suite = str(Path(__file__).resolve().parent)
        code = int(pytest.main(["-p", "no:cacheprovider", "-q", "--rootdir", suite, "-c", os.devnull, suite, *args.pytest_args]))
        # 0: every planned check ran and nothing drifted; 1: drift; 2: could not check (pytest
        # stopped, found nothing to run, or was interrupted).
        report = settings.report_dir / "report.json"
        stopped = report.is_file() and "not_checked" in json.loads(report.read_text(encoding="utf-8"))["meta"]
        return 2 if stopped or code not in (0, 1) else code
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
    return 2


if __name__ == "__main__":
    sys.exit(main())
