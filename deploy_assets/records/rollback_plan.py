"""A rollback's plan and its verification, before anything is written: which version the env
goes back to (by default the one it ran before the current one, from the repo's own history),
which projects, and whether every image and S3 object that release recorded still verifies
against the registry and the bucket. Refusals say why (RollbackRefused); rollback.py runs it.
"""

from collections import Counter
from dataclasses import dataclass

import dagster as dg

from deploy_assets.checks.artifacts import object_problem
from deploy_assets.checks.gitops import deployed_versions
from deploy_assets.checks.images import image_problem
from deploy_assets.config import PipelineConfig
from deploy_assets.names import GITOPS_KEY, partition_key
from deploy_assets.records.history import latest_for_partition
from deploy_assets.records.status import env_history, env_projects, ours, version_stack
from deploy_assets.resources.gitops import GitOpsResource
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets.tags import TagRejected, check_partition


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
        for object_key, sha256 in recorded_objects(stored.metadata) if stored else []:
            problem, _, _ = object_problem(s3, object_key, sha256)
            problems += [problem] if problem else []
    return problems


def recorded_objects(meta: dict) -> list[tuple[str, str]]:
    """(key, sha256) of every S3 object an upload's metadata records: the per-platform binaries
    (s3_key_<platform>), a single object (s3_key), and the release record's manifest and
    checksums."""
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
    return objects
