"""Rollback: re-point an env's GitOps repo to an earlier version whose artifacts still verify.

A rollback is only as good as the bytes it points at: before touching the repo, every image and
S3 object the target release recorded is checked against the registry and the bucket (the same
checks the release ran). If anything is gone or changed, the rollback is refused with the
reason, and the repo is left alone. The commit carries who/when/from/to as trailers, and the
Dagster run records an observation on the target's GitOps partition, so `status` and `lineage`
show it. Nothing re-applies the newer version afterwards: the tag sensor only releases tags it
has never seen, and no asset has an automation condition.
"""

import getpass
import socket
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from deploy_assets.assets.deploy_inputs import recorded_routes, routes_by_service
from deploy_assets.checks.artifacts import object_problem
from deploy_assets.checks.gitops import deployed_versions
from deploy_assets.checks.images import image_problem
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import ENV_TAG, GITOPS_KEY, OPERATION_TAG, partition_key
from deploy_assets.records.history import latest_for_partition
from deploy_assets.records.status import env_history, env_projects, ours, version_stack
from deploy_assets.resources.gitops import (
    GitOpsError,
    GitOpsResource,
    bump_edit,
    one_line,
    trailer_block,
)
from deploy_assets.resources.gitops_targets import by_repo, plan_targets
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets.tags import TagRejected, check_partition

ROLLBACK_JOB = "rollback"


class RollbackRefused(RuntimeError):
    """The rollback would not leave the env in a verified state; the message says why."""


@dataclass(frozen=True)
class RollbackPlan:
    env: str
    repo: str
    from_version: str
    to_version: str
    projects: list[str]
    source_commit: str


def plan_rollback(
    instance: dg.DagsterInstance,
    gitops: GitOpsResource,
    config: PipelineConfig,
    env: str,
    to: str | None,
) -> RollbackPlan:
    rule = config.envs.get(env)
    if rule is None:
        raise RollbackRefused(f"unknown env {env!r} (known: {', '.join(config.envs)})")
    if rule.gitops_mode != "git":
        raise RollbackRefused(
            f"{env} bumps through the GitHub workflow (dispatch mode); "
            "rollback re-points git-mode repos only"
        )
    repo = " ".join(rule.gitops_repos)
    stack = version_stack(
        ours(env_history(gitops, rule.targets[0].repo), env_projects(instance, env))
    )
    if not to:
        if len(stack) < 2:
            raise RollbackRefused(
                f"{repo} has no earlier version to roll back to "
                f"(versions run: {', '.join(stack) or 'none'})"
            )
        to = stack[-2]
    try:
        check_partition(to, env)
    except TagRejected as exc:
        raise RollbackRefused(str(exc)) from None
    bump = latest_for_partition(instance, GITOPS_KEY, partition_key(env, to))
    if bump is None:
        raise RollbackRefused(
            f"{to} was never released to {env}: no GitOps bump recorded for {env}|{to}"
        )
    projects = list(bump.metadata.get("projects") or [])
    now = deployed_versions(gitops, config, env, projects)
    if all(v == to for v in now.values()):
        raise RollbackRefused(f"{repo} already sets {', '.join(projects)} to {to}")
    counted = Counter(v for v in now.values() if v and v != to)
    return RollbackPlan(
        env=env,
        repo=repo,
        from_version=counted.most_common(1)[0][0] if counted else "-",
        to_version=to,
        projects=projects,
        source_commit=str(bump.metadata.get("commit", "")),
    )


def artifact_problems(
    instance: dg.DagsterInstance, registry: RegistryResource, s3: S3Resource, partition: str
) -> list[str]:
    """Every recorded image and S3 object of the release, checked against registry and bucket."""
    problems = []
    for key in instance.get_asset_keys(prefix=["image"]):
        image = latest_for_partition(instance, key, partition)
        if image is not None:
            problem, _ = image_problem(registry, image.metadata["ref"], image.metadata["digest"])
            problems += [problem] if problem else []
    for key in instance.get_asset_keys(prefix=["s3"]):
        stored = latest_for_partition(instance, key, partition)
        if stored is None:
            continue
        meta = stored.metadata
        objects = [
            (meta[k], meta["sha256_" + k.removeprefix("s3_key_")])
            for k in meta
            if k.startswith("s3_key_")
        ]
        objects += [(meta["s3_key"], meta["sha256"])] if "s3_key" in meta else []
        objects += [
            (meta[f"{n}_key"], meta[f"{n}_sha256"])
            for n in ("manifest", "checksums")
            if f"{n}_key" in meta
        ]
        for object_key, sha256 in objects:
            problem, _, _ = object_problem(s3, object_key, sha256)
            problems += [problem] if problem else []
    return problems


def rollback_message(plan: RollbackPlan, by: str, at: str, run_id: str) -> str:
    """Subject and trailers of the rollback commit; every value must be one line (one_line), so
    none can forge a trailer that status and the next rollback's default target would trust."""
    subject = (
        f"rollback({plan.env}): {' '.join(one_line('project', p) for p in plan.projects)} -> "
        f"{one_line('to', plan.to_version)} (from {one_line('from version', plan.from_version)})"
    )
    return f"{subject}\n\n" + trailer_block(
        [
            ("Release-Tag", plan.to_version),
            ("Source-Commit", plan.source_commit),
            ("Rollback-From", plan.from_version),
            ("Rollback-By", by),
            ("Rollback-At", at),
            ("Dagster-Run", run_id),
        ]
    )


def requester() -> str:
    """user@host of this process; control characters (from a hostile LOGNAME) become spaces."""
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    return " ".join("".join(" " if unicodedata.category(c)[0] == "C" else c for c in who).split())


def requested_by(config_value: str, user_tag: str | None) -> str:
    """Who asked: the config's requested_by, else the run's `user` tag, else "dagster"; refused
    (naming where it came from) if it is not a single line of text."""
    by, source = (
        (config_value, "requested_by") if config_value else (user_tag, "the run's user tag")
    )
    if not by:
        return "dagster"
    try:
        return one_line(source, by)
    except GitOpsError as exc:
        raise RollbackRefused(str(exc)) from None


class RollbackConfig(dg.Config):
    env: str
    to: str = ""  # default: the version the env ran before the current one
    requested_by: str = ""  # default: the run's `user` tag, else "dagster"; one line of text


def build_rollback_job(pipeline: PipelineConfig, settings: Settings) -> dg.JobDefinition:
    @dg.op(
        name="rollback_env",
        pool="gitops",
        description="Verify the target release's artifacts, then re-point the env's GitOps repo.",
    )
    def rollback_env(
        context: dg.OpExecutionContext,
        config: RollbackConfig,
        gitops: GitOpsResource,
        registry: RegistryResource,
        s3: S3Resource,
    ) -> None:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            by = requested_by(config.requested_by, context.run.tags.get("user"))
            plan = plan_rollback(context.instance, gitops, pipeline, config.env, config.to or None)
            message = rollback_message(plan, by, at, context.run.run_id)  # refuses a forged trailer
            problems = artifact_problems(
                context.instance, registry, s3, partition_key(plan.env, plan.to_version)
            )
            if problems:
                raise RollbackRefused(
                    f"artifacts of {plan.env}|{plan.to_version} no longer verify: "
                    + "; ".join(problems)
                )
        except (RollbackRefused, GitOpsError) as exc:
            raise dg.Failure(
                description=f"rollback of {config.env} refused: {exc}",
                allow_retries=False,
                metadata={"refused": True},
            ) from None
        rule = pipeline.envs[plan.env]
        routes = (
            routes_by_service(
                recorded_routes(context.instance, s3, partition_key(plan.env, plan.to_version))
            )
            if rule.updates_routes
            else None
        )
        try:  # every target's files planned before the first push: never one repo rolled back alone
            images = {p: f"{settings.registry}/{p}" for p in plan.projects}
            plan_targets(
                rule.targets, plan.env, images, plan.to_version, gitops.read_files, url=gitops.url
            )
        except GitOpsError as exc:
            raise dg.Failure(
                description=f"rollback of {config.env} refused: {exc}",
                allow_retries=False,
                metadata={"refused": True},
            ) from None
        pushed = next(
            iter(
                [
                    gitops.commit_and_push(
                        repo,
                        bump_edit(group, plan.env, images, plan.to_version, routes),
                        message,
                        log=context.log.info,
                    )
                    for repo, group in by_repo(rule.targets).items()
                ]
            )
        )
        context.log_event(
            dg.AssetObservation(
                asset_key=GITOPS_KEY,
                partition=partition_key(plan.env, plan.to_version),
                description=f"rollback of {plan.env} from {plan.from_version} to {plan.to_version} by {by}",
                metadata={
                    "rollback_from": plan.from_version,
                    "rollback_to": plan.to_version,
                    "rolled_back_by": by,
                    "rolled_back_at": at,
                    "gitops_commit": pushed.commit,
                    "repo": plan.repo,
                    "projects": plan.projects,
                },
            )
        )
        context.log.info(
            f"{plan.repo}: {', '.join(plan.projects)} re-pointed from {plan.from_version} "
            f"to {plan.to_version} ({pushed.commit[:12]})"
        )

    @dg.job(
        name=ROLLBACK_JOB,
        tags={OPERATION_TAG: "rollback"},
        description="Re-point an env's GitOps repo to an earlier version whose artifacts still verify.",
    )
    def rollback():
        rollback_env()

    return rollback


@dataclass(frozen=True)
class RollbackOutcome:
    env: str
    run_id: str
    success: bool
    refused: bool
    error: str


def run_rollback(
    defs: dg.Definitions, instance: dg.DagsterInstance, env: str, to: str | None, requested_by: str
) -> RollbackOutcome:
    """Execute the rollback job in-process, as the CLI does (same job as the UI launches)."""
    result = defs.resolve_job_def(ROLLBACK_JOB).execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={
            "ops": {
                "rollback_env": {
                    "config": {"env": env, "to": to or "", "requested_by": requested_by}
                }
            }
        },
        tags={ENV_TAG: env, "user": requested_by},
    )
    error, refused = "", False
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            failure = event.step_failure_data
            if failure.user_failure_data:  # our dg.Failure: a refusal with its reason
                error = failure.user_failure_data.description or "rollback failed"
                refused = "refused" in failure.user_failure_data.metadata
            else:
                error = failure.error.message.strip() if failure.error else "rollback failed"
    return RollbackOutcome(env, result.run_id, result.success, refused, error)
