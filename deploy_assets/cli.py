"""`deploy-assets`: plan, release, refresh, demo and the local stack, from a terminal or an existing CI.

Exit codes: 0 done, 1 the release failed, 2 the input was refused (bad tag, bad config),
3 `plan` only: the promotion gate would refuse the release (the plan is printed all the same).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from deploy_assets import legacy, record_cli
from deploy_assets.config import LOCAL_DIR, ConfigError, apply_env_file, Settings, load_pipeline_config
from deploy_assets.plan import PlanError
from deploy_assets.release import TagRejected, parse_tag
from deploy_assets.resources.credentials import redact_url


def _settings(args) -> Settings:
    if getattr(args, "repo", None):
        os.environ["DEPLOY_ASSETS_SOURCE_REPO"] = args.repo
    if getattr(args, "config", None):
        os.environ["DEPLOY_ASSETS_CONFIG"] = args.config
    return Settings.from_env()


def cmd_plan(args) -> int:
    from deploy_assets.history import staging_records
    from deploy_assets.plan import build_plan, discover_services
    from deploy_assets.resources.git import GitError, GitSourceResource
    from deploy_assets.runner import get_instance

    release = parse_tag(args.tag)
    settings, config = _settings(args), load_pipeline_config()
    git = GitSourceResource(remote=settings.source_repo, cache_dir=str(settings.cache_dir))
    git.fetch()
    try:
        commit, commit_source = git.resolve(f"refs/tags/{release.tag}"), "tag"
    except GitError:
        commit, commit_source = git.resolve("HEAD"), "HEAD (the tag does not exist yet)"
    services = discover_services(git.list_files(commit), config.source, config.platforms)
    plan = build_plan(release, commit, commit_source, services, config, settings,
                      staging_records(get_instance()))
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
        return 0 if plan.gate.passes else 3
    print(f"tag      {plan.tag}\nenv      {plan.env} (job {plan.job})\ncommit   {plan.commit} from {plan.commit_source}")
    print(f"gate     {'PASS' if plan.gate.passes else 'FAIL'}: {plan.gate.reason}")
    print("binaries " + "\n         ".join(plan.binaries))
    print("images   " + "\n         ".join(plan.images.values()))
    print("s3       " + "\n         ".join(f"s3://{settings.bucket}/{k}" for k in plan.s3_keys.values()))
    print(f"gitops   {plan.gitops_repo}: {' '.join(plan.gitops_projects)} -> {plan.version}"
          f" (updatesRoutes={str(plan.updates_routes).lower()})")
    if plan.api_gateway_repo:
        print(f"routes   {plan.api_gateway_repo}: API-gateway routes -> {plan.version}")
    return 0 if plan.gate.passes else 3


def cmd_release(args) -> int:
    parse_tag(args.tag)
    settings = _settings(args)
    from deploy_assets.report import format_release, release_rows, service_names
    from deploy_assets.runner import get_instance, release_definitions, run_release

    defs, refreshed = release_definitions(settings, load_pipeline_config())
    if refreshed.before is not None and (refreshed.added or refreshed.removed):
        print(f"services refreshed: {_changes(refreshed)}", flush=True)
    instance = get_instance()
    print(f"releasing {args.tag} from {redact_url(settings.source_repo)} ...", flush=True)
    # The progress lines replace Dagster's console log (warnings and errors still show);
    # DEPLOY_ASSETS_LOG_LEVEL=INFO brings the full event log back.
    outcome = run_release(defs, instance, args.tag, progress=lambda line: print(line, flush=True),
                          log_level=os.environ.get("DEPLOY_ASSETS_LOG_LEVEL", "WARNING"))
    names = service_names(defs)
    print(format_release(release_rows(instance, f"{outcome.env}|{args.tag}", names)))
    print(f"run {outcome.run_id}: {'succeeded' if outcome.success else 'FAILED: ' + outcome.error}")
    return 0 if outcome.success else 1


def _changes(done) -> str:
    return f"added {', '.join(done.added) or 'none'}; removed {', '.join(done.removed) or 'none'}"


def cmd_refresh(args) -> int:
    """Rediscover the services on purpose: the code location reads this state and never fetches."""
    from deploy_assets.state.services import refresh, state_path

    settings = _settings(args)
    done = refresh(settings, load_pipeline_config())
    after = done.after
    print(f"services of {after.remote} at {after.commit[:12]} (HEAD), recorded in {state_path(settings)}:")
    for service in after.services:
        print(f"  {service.name:<24} {service.kind:<8} {service.path}")
    if not after.services:
        print("  (none)")
    print(_changes(done) + (" (no state before)" if done.before is None else f" since {done.before.discovered_at}"))
    print("a code location loaded before this sees the new list after a reload "
          "(UI: Deployment -> Reload; `dagster dev`: restart it)")
    return 0


def cmd_demo(args) -> int:
    from deploy_assets import demo
    return demo.main()


def cmd_stack(args) -> int:
    from deploy_assets import local_stack
    from deploy_assets.demo import stack_up

    if args.action == "up":
        info = stack_up()
        print(f"registry {info.registry}\ns3 {info.s3_endpoint}\ngit {redact_url(str(info.git_root))}")
    else:
        stopped = local_stack.down(LOCAL_DIR)
        print("stopped: " + (", ".join(stopped) or "nothing was running"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deploy-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="what releasing TAG would do, without doing it")
    plan.add_argument("tag")
    plan.add_argument("--json", action="store_true")
    release = sub.add_parser("release", help="run TAG's release in-process on the Dagster instance")
    release.add_argument("tag")
    refresh = sub.add_parser("refresh", help="fetch the source remote and record its services for the code location")
    for p in (plan, release, refresh):
        p.add_argument("--repo", help="source monorepo (path or git URL); default DEPLOY_ASSETS_SOURCE_REPO")
        p.add_argument("--config", help="pipeline config; default DEPLOY_ASSETS_CONFIG or misc/configs/pipeline.yaml")
    sub.add_parser("demo", help="local stack + example monorepo + alpha/rc/final tags through the sensor")
    stack = sub.add_parser("stack", help="start or stop the local stack")
    stack.add_argument("action", choices=["up", "down"])
    plan.set_defaults(func=cmd_plan)
    release.set_defaults(func=cmd_release)
    refresh.set_defaults(func=cmd_refresh)
    sub.choices["demo"].set_defaults(func=cmd_demo)
    stack.set_defaults(func=cmd_stack)
    legacy.register(sub)
    record_cli.register(sub)  # status, lineage, rollback
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_env_file()
    try:
        return args.func(args)
    except (TagRejected, ConfigError, PlanError) as exc:
        print(f"deploy-assets: refused: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a clear one-line error, not a traceback, for expected failures
        if os.environ.get("DEPLOY_ASSETS_DEBUG"):
            raise
        print(f"deploy-assets: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
