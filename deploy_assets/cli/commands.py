"""`deploy-assets`: plan, release, refresh, demo and the local stack, from a terminal or CI.

release, rollback and demo print progress lines and the outcome; Dagster's own records (its
console log) go to a file under DAGSTER_HOME/logs named at the end, or to the terminal with
--verbose. DEPLOY_ASSETS_LOG_LEVEL sets their threshold (default: DEBUG in the file, INFO on
the terminal). An expected refusal says what was refused, why and what to do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from deploy_assets.cli import legacy, records as record_cli
from deploy_assets.cli.logs import DagsterLog, dagster_home
from deploy_assets.cli.outcome import (
    EXIT_FAILED,
    EXIT_GATE,
    EXIT_OK,
    EXIT_REFUSED,
    epilog,
    release_verdict,
)
from deploy_assets.config import (
    LOCAL_DIR,
    ConfigError,
    Settings,
    apply_env_file,
    load_pipeline_config,
)
from deploy_assets.matrix import MatrixError
from deploy_assets.names import partition_key
from deploy_assets.plan import PlanError
from deploy_assets.resources.credentials import redact_url
from deploy_assets.tags import TagRejected, parse_tag


def _settings(args) -> Settings:
    if getattr(args, "repo", None):
        os.environ["DEPLOY_ASSETS_SOURCE_REPO"] = args.repo
    if getattr(args, "config", None):
        os.environ["DEPLOY_ASSETS_CONFIG"] = args.config
    return Settings.from_env()


def _dagster_log(args) -> DagsterLog:
    """The log main() opened for this command; a direct caller's records go to the terminal."""
    return getattr(args, "dagster_log", None) or DagsterLog(None)


def cmd_plan(args) -> int:
    from deploy_assets.cli.runner import get_instance
    from deploy_assets.plan import build_plan, discover_services
    from deploy_assets.records.history import staging_records
    from deploy_assets.resources.git import GitError, GitSourceResource

    release = parse_tag(args.tag)
    settings, config = _settings(args), load_pipeline_config()
    git = GitSourceResource(remote=settings.source_repo, cache_dir=str(settings.cache_dir))
    git.fetch()
    try:
        commit, commit_source = git.resolve(f"refs/tags/{release.tag}"), "tag"
    except GitError:
        commit, commit_source = git.resolve("HEAD"), "HEAD (the tag does not exist yet)"
    services = discover_services(git.list_files(commit), config.source, config.platforms)
    plan = build_plan(
        release, commit, commit_source, services, config, settings, staging_records(get_instance())
    )
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
        return EXIT_OK if plan.gate.passes else EXIT_GATE
    print(
        f"tag      {plan.tag}\nenv      {plan.env} (job {plan.job})\n"
        f"commit   {plan.commit} from {plan.commit_source}"
    )
    print(f"gate     {'PASS' if plan.gate.passes else 'FAIL'}: {plan.gate.reason}")
    print("binaries " + "\n         ".join(plan.binaries))
    print("images   " + "\n         ".join(plan.images.values()))
    print(
        "s3       "
        + "\n         ".join(f"s3://{settings.bucket}/{k}" for k in plan.s3_keys.values())
    )
    print(
        f"gitops   {plan.gitops_repo}: {' '.join(plan.gitops_projects)} -> {plan.version}"
        f" (updatesRoutes={str(plan.updates_routes).lower()})"
    )
    for t in plan.gitops_targets:
        print(f"  target {t['name']}: {t['repo']} {' '.join(t['files'])}")
    if plan.api_gateway_repo:
        print(f"routes   {plan.api_gateway_repo}: API-gateway routes -> {plan.version}")
    return EXIT_OK if plan.gate.passes else EXIT_GATE


def cmd_release(args) -> int:
    release = parse_tag(args.tag)
    settings, log = _settings(args), _dagster_log(args)
    from deploy_assets.cli.report import format_release
    from deploy_assets.cli.runner import get_instance, release_definitions, run_release
    from deploy_assets.records.release_rows import release_rows, service_names

    defs, refreshed = release_definitions(settings, load_pipeline_config())
    if refreshed.before is not None and (refreshed.added or refreshed.removed):
        print(f"services refreshed: {_changes(refreshed)}", flush=True)
    defs, instance = log.wire(defs), get_instance()
    print(f"releasing {args.tag} from {redact_url(settings.source_repo)} ...", flush=True)
    outcome = run_release(
        defs, instance, args.tag, progress=lambda line: print(line, flush=True), log_level=log.level
    )
    verdict = release_verdict(
        args.tag,
        str(release.base_version),
        outcome.success,
        outcome.failed_step,
        outcome.error_class,
        outcome.reason,
    )
    if verdict.refused:  # what, why, what to do: no table of nothing
        print(f"deploy-assets: refused: {outcome.reason}\ndeploy-assets: do: {verdict.hint}")
        _announce(log)
        print(f"run {outcome.run_id}: refused in step {outcome.failed_step}")
        return verdict.code
    rows = release_rows(instance, partition_key(outcome.env, args.tag), service_names(defs))
    if rows:
        print(format_release(rows))
    _announce(log)  # the run line stays the last
    print(f"run {outcome.run_id}: {'succeeded' if outcome.success else 'FAILED: ' + outcome.error}")
    return verdict.code


def _announce(log: DagsterLog) -> None:
    if line := log.announce():
        print(line, flush=True)


def _changes(done) -> str:
    return f"added {', '.join(done.added) or 'none'}; removed {', '.join(done.removed) or 'none'}"


def cmd_refresh(args) -> int:
    """Rediscover the services on purpose: the code location reads this state and never fetches."""
    from deploy_assets.state.services import refresh, state_path

    settings = _settings(args)
    done = refresh(settings, load_pipeline_config())
    after = done.after
    print(
        f"services of {after.remote} at {after.commit[:12]} (HEAD), "
        f"recorded in {state_path(settings)}:"
    )
    for service in after.services:
        print(f"  {service.name:<24} {service.kind:<8} {service.path}")
    if not after.services:
        print("  (none)")
    print(
        _changes(done)
        + (" (no state before)" if done.before is None else f" since {done.before.discovered_at}")
    )
    print(
        "a code location loaded before this sees the new list after a reload "
        "(UI: Deployment -> Reload; `dagster dev`: restart it)"
    )
    return 0


def cmd_demo(args) -> int:
    from deploy_assets.cli import demo

    return demo.main(log=_dagster_log(args))


def cmd_stack(args) -> int:
    from deploy_assets.cli.demo import stack_up
    from deploy_assets.local import stack as local_stack

    if args.action == "up":
        info = stack_up()
        print(
            f"registry {info.registry}\ns3 {info.s3_endpoint}\ngit {redact_url(str(info.git_root))}"
        )
    else:
        stopped = local_stack.down(LOCAL_DIR)
        print("stopped: " + (", ".join(stopped) or "nothing was running"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deploy-assets",
        description=__doc__,
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="what releasing TAG would do, without doing it")
    plan.add_argument("tag")
    plan.add_argument("--json", action="store_true")
    release = sub.add_parser(
        "release",
        help="run TAG's release in-process on the Dagster instance",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    release.add_argument("tag")
    refresh = sub.add_parser(
        "refresh", help="fetch the source remote and record its services for the code location"
    )
    for p in (plan, release, refresh):
        p.add_argument(
            "--repo", help="source monorepo (path or git URL); default DEPLOY_ASSETS_SOURCE_REPO"
        )
        p.add_argument(
            "--config",
            help="pipeline config; default DEPLOY_ASSETS_CONFIG or misc/configs/pipeline.yaml",
        )
    demo = sub.add_parser(
        "demo", help="local stack + example monorepo + alpha/rc/final tags through the sensor"
    )
    stack = sub.add_parser("stack", help="start or stop the local stack")
    stack.add_argument("action", choices=["up", "down"])
    plan.set_defaults(func=cmd_plan)
    release.set_defaults(func=cmd_release)
    refresh.set_defaults(func=cmd_refresh)
    demo.set_defaults(func=cmd_demo)
    stack.set_defaults(func=cmd_stack)
    legacy.register(sub)
    record_cli.register(sub)  # status, lineage, rollback
    for name in ("release", "rollback", "demo"):
        sub.choices[name].add_argument(
            "--verbose",
            action="store_true",
            help="Dagster's records on the terminal, not in a log file",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_env_file()
    try:  # named after the command (never after user input); created at its first record
        log = DagsterLog.for_command(args.command, dagster_home(), getattr(args, "verbose", False))
    except ConfigError as exc:
        print(f"deploy-assets: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    args.dagster_log = log
    try:
        return args.func(args)
    except (TagRejected, ConfigError, PlanError, MatrixError) as exc:
        print(f"deploy-assets: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # a clear one-line error, not a traceback (that goes to the log)
        if os.environ.get("DEPLOY_ASSETS_DEBUG"):
            raise
        log.record_exception(exc)
        print(f"deploy-assets: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        _announce(log)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
