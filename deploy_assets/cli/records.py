"""`deploy-assets status | lineage | rollback`: the release record from a terminal.

status and lineage only read (the instance, the GitOps repos, the registry, the bucket);
rollback runs the same Dagster job the UI launches, in-process on the configured instance,
so a rollback from a terminal is recorded exactly like one from the UI.
Exit codes: 0 done, 1 failed, 2 refused (the reason and what to do are printed); Dagster's
records of a rollback go to the command's log file (deploy_assets.cli.logs).
"""

from __future__ import annotations

import argparse
import json

from deploy_assets.config import PipelineConfig, Settings, load_pipeline_config
from deploy_assets.names import partition_key


def _clients(settings: Settings, config: PipelineConfig):
    """(gitops, registry, s3): the code location's own resources, configured the same way."""
    from deploy_assets.definitions import build_resources

    resources = build_resources(settings, config)
    return resources["gitops"], resources["registry"], resources["s3"]


def _short(value: str | None, n: int = 19) -> str:
    return (value[:n] + "…") if value and len(value) > n else (value or "-")


def format_lineage(doc: dict) -> str:
    lines = [
        f"{doc['tag']} ({doc['env']})  commit {doc['commit']}  toolchain {doc['toolchain']}  "
        f"release run {doc['release_run']}"
    ]
    if doc["env"] == "prod":
        lines.append(
            f"  promoted from staging {doc['staging_release'] or 'NONE'}: {doc['promotion_gate']}"
        )
    if doc["gitops"]:
        lines.append(
            f"  gitops  {doc['gitops']['repo']} @ {_short(doc['gitops']['commit'], 12)} "
            f"(run {doc['gitops']['run_id']})"
        )
    if doc["manifest"]:
        lines.append(f"  record  {doc['manifest']['key']}, {doc['manifest']['checksums_key']}")
    for name, svc in doc["services"].items():
        lines.append(f"{name} ({svc['kind']})")
        for p, b in svc["binaries"].items():
            lines.append(
                f"  binary  {p} sha256 {b['sha256']}"
                + (f" (reused from {b['reused_from']})" if b["reused_from"] else "")
            )
        if svc["image"]:
            img = svc["image"]
            lines.append(
                f"  image   {img['ref']} @ {img['recorded_digest']} — registry: "
                + (img["problem"] or "same digest")
            )
        for p, obj in (svc["s3"] or {}).items():
            lines.append(
                f"  s3      {p} {obj['uri']} sha256 {obj['object_sha256'] or '-'} — "
                + (obj["problem"] or "matches the binary")
            )
        lines.append(f"  gitops  {_short(svc['gitops_commit'], 12)}")
        failed = {k: c for k, c in svc["checks"].items() if c["status"] != "PASSED"}
        lines.append(
            f"  checks  {len(svc['checks']) - len(failed)}/{len(svc['checks'])} passed"
            + "".join(
                f"\n          {k}: {c['status']} ({c['severity']}) {c['description']}"
                for k, c in failed.items()
            )
        )
        if "staging" in svc:
            st = svc["staging"]
            lines.append(
                f"  staging {st['release']}: {'same bytes' if st['same_bytes'] else 'DIFFERENT BYTES'} "
                f"(digest {_short(st['image_digest'])})"
            )
    for name, c in doc["release_checks"].items():
        lines.append(f"check {name}: {c['status']} {c['description']}")
    for rb in doc["rollbacks"]:
        lines.append(
            f"rollback {rb['from']} -> {rb['to']} by {rb['by']} at {rb['at']} "
            f"(gitops {_short(rb['gitops_commit'], 12)}, run {rb['run_id']})"
        )
    return "\n".join(lines)


def format_digest(doc: dict) -> str:
    if not doc["releases"]:
        return f"{doc['digest']}: no release recorded this digest"
    lines = [doc["digest"]]
    for r in doc["releases"]:
        lines.append(
            f"  {r['service']} {partition_key(r['env'], r['tag'])}  commit {_short(r['commit'], 12)}  binary sha256 "
            f"{_short(r['binary_sha256'])}  run {r['run_id']}"
            + (f"  reused from {r['reused_from']}" if r["reused_from"] else "")
            + ("  RUNNING NOW" if r.get("running_now") else "")
            + ("" if r["registry_serves_tag"] else "  (tag no longer served)")
        )
    return "\n".join(lines)


def cmd_status(
    args, instance=None, settings: Settings | None = None, config: PipelineConfig | None = None
) -> int:
    from deploy_assets.cli.report import format_status
    from deploy_assets.cli.runner import get_instance
    from deploy_assets.records.status import status

    settings, config = settings or Settings.from_env(), config or load_pipeline_config()
    gitops, _, _ = _clients(settings, config)
    doc = status(instance or get_instance(), gitops, config)
    print(json.dumps(doc, indent=2) if args.json else format_status(doc) + format_targets(doc))
    return 0


def format_targets(doc: dict) -> str:
    """The versions per GitOps target of the envs that write several (status gives them only
    then): a target left behind shows here, not just as a `target=version / ...` cell."""
    lines = [
        f"{env} target {target}: "
        + (", ".join(f"{p} {v or '-'}" for p, v in sorted(versions.items())) or "no projects")
        for env, info in doc.items()
        for target, versions in (info.get("targets") or {}).items()
    ]
    return "".join("\n" + line for line in lines)


def cmd_lineage(
    args, instance=None, settings: Settings | None = None, config: PipelineConfig | None = None
) -> int:
    from deploy_assets.cli.runner import get_instance
    from deploy_assets.records.lineage import digest_lineage, release_lineage
    from deploy_assets.records.status import status

    settings, config = settings or Settings.from_env(), config or load_pipeline_config()
    instance = instance or get_instance()
    gitops, registry, s3 = _clients(settings, config)
    if args.digest:
        doc = digest_lineage(instance, registry, args.digest)
        now = status(instance, gitops, config)
        for r in doc["releases"]:
            running = now.get(r["env"], {}).get("projects", {}).get(r["service"], {})
            r["running_now"] = running.get("version") == r["tag"]
        print(json.dumps(doc, indent=2) if args.json else format_digest(doc))
        return 0 if doc["releases"] else 1
    if not args.version:
        print("deploy-assets lineage: give a VERSION or --digest sha256:...")
        return 2
    try:
        doc = release_lineage(instance, registry, s3, args.version)
    except LookupError as exc:
        print(f"deploy-assets: {exc}")
        return 1
    print(json.dumps(doc, indent=2) if args.json else format_lineage(doc))
    return 0


def cmd_rollback(args, instance=None, settings: Settings | None = None) -> int:
    from deploy_assets.cli.outcome import rollback_verdict
    from deploy_assets.cli.runner import get_instance
    from deploy_assets.definitions import build_definitions
    from deploy_assets.records.rollback import requester, run_rollback

    settings = settings or Settings.from_env()
    log = getattr(args, "dagster_log", None)
    instance = instance or get_instance()
    # The job's `console` logger is the command's: its records go to the command's log file
    # (--verbose: the terminal), at the command's level.
    defs = build_definitions(settings)
    outcome = run_rollback(
        log.wire(defs) if log else defs,
        instance,
        args.env,
        args.to,
        args.by or requester(),
        log_level=log.level if log else None,
    )
    verdict = rollback_verdict(args.env, outcome.success, outcome.refused)
    if outcome.success:
        print(f"rollback of {args.env} done (run {outcome.run_id}); see `deploy-assets status`")
    else:
        print(f"deploy-assets: {outcome.error} (run {outcome.run_id})")
    if verdict.refused:
        print(f"deploy-assets: do: {verdict.hint}")
    return verdict.code


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser(
        "status", help="what each env runs now (from its GitOps repo), since when, by which run"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    lineage = sub.add_parser(
        "lineage", help="tag → commit → sha256 → digest → S3 → GitOps → checks, per service"
    )
    lineage.add_argument(
        "version", nargs="?", help="release tag, e.g. v0.1.0 (its env follows from the tag)"
    )
    lineage.add_argument(
        "--digest", help="sha256:... of a running image: which release it came from"
    )
    lineage.add_argument("--json", action="store_true")
    lineage.set_defaults(func=cmd_lineage)
    rollback = sub.add_parser(
        "rollback", help="re-point ENV to an earlier version whose artifacts still verify"
    )
    rollback.add_argument("env")
    rollback.add_argument(
        "--to", help="version to roll back to (default: the one the env ran before)"
    )
    rollback.add_argument("--by", help="who asks (default: user@host)")
    rollback.set_defaults(func=cmd_rollback)
