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
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from deploy_assets.assets.deploy_inputs import recorded_routes, routes_by_service
from deploy_assets.assets.gitops_decisions import image_repos
from deploy_assets.config import EnvRule, PipelineConfig, Settings
from deploy_assets.names import ENV_TAG, GITOPS_KEY, OPERATION_TAG, partition_key
from deploy_assets.records.rollback_plan import (  # re-exported: the rollback's public names
    RollbackPlan,
    RollbackRefused,
    artifact_problems,
    plan_rollback,
)
from deploy_assets.resources.gitops import (
    GitOpsError,
    GitOpsResource,
    PushResult,
    bump_edit,
    one_line,
    trailer_block,
)
from deploy_assets.resources.gitops_targets import by_repo, plan_targets
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource

__all__ = ["RollbackPlan", "RollbackRefused", "artifact_problems", "plan_rollback"]

ROLLBACK_JOB = "rollback"


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


def refusal(env: str, exc: Exception) -> dg.Failure:
    """A refused rollback: no retry, and marked so run_rollback (and the CLI) tell it from a
    failure."""
    return dg.Failure(
        description=f"rollback of {env} refused: {exc}",
        allow_retries=False,
        metadata={"refused": True},
    )


def verified_rollback(
    context: dg.OpExecutionContext,
    config: RollbackConfig,
    pipeline: PipelineConfig,
    resources: tuple[GitOpsResource, RegistryResource, S3Resource],
    at: str,
) -> tuple[RollbackPlan, str, str]:
    """(plan, who asked, commit message), once the target's artifacts verify; else refused."""
    gitops, registry, s3 = resources
    try:
        by = requested_by(config.requested_by, context.run.tags.get("user"))
        plan = plan_rollback(context.instance, gitops, pipeline, config.env, config.to or None)
        message = rollback_message(plan, by, at, context.run.run_id)  # refuses a forged trailer
        partition = partition_key(plan.env, plan.to_version)
        problems = artifact_problems(context.instance, registry, s3, partition)
        if problems:
            raise RollbackRefused(
                f"artifacts of {partition} no longer verify: " + "; ".join(problems)
            )
    except (RollbackRefused, GitOpsError) as exc:
        raise refusal(config.env, exc) from None
    return plan, by, message


def push_rollback(
    context: dg.OpExecutionContext,
    gitops: GitOpsResource,
    s3: S3Resource,
    rule: EnvRule,
    plan: RollbackPlan,
    message: str,
    registry: str,
) -> PushResult:
    """Every target's files planned before the first push (never one repo rolled back alone),
    then one commit per repo; the first repo's push."""
    partition = partition_key(plan.env, plan.to_version)
    routes = (
        routes_by_service(recorded_routes(context.instance, s3, partition))
        if rule.updates_routes
        else None
    )
    images = image_repos(registry, plan.projects)
    try:
        plan_targets(
            rule.targets, plan.env, images, plan.to_version, gitops.read_files, url=gitops.url
        )
    except GitOpsError as exc:
        raise refusal(plan.env, exc) from None
    pushed = [
        gitops.commit_and_push(
            repo,
            bump_edit(group, plan.env, images, plan.to_version, routes),
            message,
            log=context.log.info,
        )
        for repo, group in by_repo(rule.targets).items()
    ]
    return pushed[0]


def rollback_observation(plan: RollbackPlan, by: str, at: str, commit: str) -> dg.AssetObservation:
    """The record on the target's GitOps partition that status and lineage show."""
    return dg.AssetObservation(
        asset_key=GITOPS_KEY,
        partition=partition_key(plan.env, plan.to_version),
        description=f"rollback of {plan.env} from {plan.from_version} to {plan.to_version} by {by}",
        metadata={
            "rollback_from": plan.from_version,
            "rollback_to": plan.to_version,
            "rolled_back_by": by,
            "rolled_back_at": at,
            "gitops_commit": commit,
            "repo": plan.repo,
            "projects": plan.projects,
        },
    )


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
        plan, by, message = verified_rollback(context, config, pipeline, (gitops, registry, s3), at)
        rule = pipeline.envs[plan.env]
        pushed = push_rollback(context, gitops, s3, rule, plan, message, settings.registry)
        context.log_event(rollback_observation(plan, by, at, pushed.commit))
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


def rollback_run_config(
    env: str, to: str | None, requested_by: str, log_level: str | None = None
) -> dict:
    """The rollback job's run config; with log_level, the `console` logger's threshold too (the
    CLI's logger, writing to the command's log file, or Dagster's default one)."""
    run_config: dict = {
        "ops": {
            "rollback_env": {"config": {"env": env, "to": to or "", "requested_by": requested_by}}
        }
    }
    if log_level:
        run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}
    return run_config


def run_rollback(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    env: str,
    to: str | None,
    requested_by: str,
    log_level: str | None = None,
) -> RollbackOutcome:
    """Execute the rollback job in-process, as the CLI does (same job as the UI launches)."""
    result = defs.resolve_job_def(ROLLBACK_JOB).execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=rollback_run_config(env, to, requested_by, log_level),
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
