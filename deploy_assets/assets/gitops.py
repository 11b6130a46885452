"""The GitOps bump: the env's repo set to the release's version for every project.

It is the last stage and depends on every image and artifact of the release, so in a release
run it never runs after a failed push or upload. In any other run (one asset clicked in the UI,
a backfill) the deploy gate (checks/published.py) asks the registry and S3 whether every image
and object of this release is published as recorded, and refuses before the repo is touched.
Its inputs come from the instance and the bucket, not from a work folder: it can run alone on
a fresh worker. Git mode commits and pushes; dispatch mode triggers the old system's workflow
through the GitHub API and waits for its conclusion.
"""

import dagster as dg

from deploy_assets.assets.deploy_inputs import (
    deployed_projects,
    published_keys,
    recorded_routes,
    release_facts,
    routes_by_service,
)
from deploy_assets.assets.gitops_decisions import (
    already_deployed,
    bump_metadata,
    gitops_upstream,
    image_repos,
    version_workflow_inputs,
    workflow_metadata,
)
from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.release_claim import claim_release
from deploy_assets.checks.published import require_published
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import GITOPS_KEY, partition_key, split_partition_key
from deploy_assets.plan import Service
from deploy_assets.records.history import latest_for_partition
from deploy_assets.resources.github import GitHubResource
from deploy_assets.resources.gitops import GitOpsResource, bump_edit, commit_message
from deploy_assets.resources.gitops_targets import by_repo, plan_targets
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets.tags import check_partition

UPDATE_VERSION_WORKFLOW = "Update Project List Version"


def build_gitops_asset(
    services: list[Service], config: PipelineConfig, settings: Settings
) -> dg.AssetsDefinition:
    @dg.asset(
        key=GITOPS_KEY,
        deps=gitops_upstream(services, config),
        partitions_def=release_partitions,
        group_name="deploy",
        kinds={"git"},
        pool="gitops",
        description="GitOps repo of the env bumped to the version (newVersion/projectNames/updatesRoutes).",
    )
    def gitops_bump(
        context: dg.AssetExecutionContext,
        gitops: GitOpsResource,
        github: GitHubResource,
        registry: RegistryResource,
        s3: S3Resource,
    ) -> dg.MaterializeResult:
        resources = (gitops, github, registry, s3)
        return dg.MaterializeResult(
            metadata=bump_release(context, resources, services, config, settings)
        )

    return gitops_bump


def bump_release(
    context: dg.AssetExecutionContext,
    resources: tuple[GitOpsResource, GitHubResource, RegistryResource, S3Resource],
    services: list[Service],
    config: PipelineConfig,
    settings: Settings,
) -> dict:
    """The bump of one release partition, after the deploy gate; its metadata. A release already
    deployed is not bumped again: moving an env back is what `rollback` is for."""
    gitops, github, registry, s3 = resources
    env, tag = split_partition_key(context.partition_key)
    check_partition(tag, env)  # a partition key typed in the UI gets the tag policy too
    partition = partition_key(env, tag)
    claim_release(context.instance, context.run.run_id, partition)
    deployed = latest_for_partition(context.instance, GITOPS_KEY, partition)
    if deployed is not None:
        message, metadata = already_deployed(tag, env, deployed.metadata, deployed.run_id)
        context.log.info(message)
        return metadata
    facts = release_facts(context.instance, partition, services)
    images, objects = published_keys(facts, config, env)
    rule = config.envs[env]
    what = f"GitOps bump of {' '.join(rule.gitops_repos)}"
    require_published(context, registry, s3, partition, images, objects, what)
    projects = deployed_projects(facts, config, env)
    metadata = bump_metadata(rule, tag, projects, facts.commit)
    if rule.gitops_mode == "dispatch":
        inputs = version_workflow_inputs(tag, projects, rule.updates_routes)
        outcome = github.dispatch_and_wait(
            rule.gitops_repo, UPDATE_VERSION_WORKFLOW, inputs, log=context.log
        )
        return {**metadata, **workflow_metadata(outcome)}
    routes = (
        routes_by_service(recorded_routes(context.instance, s3, partition))
        if rule.updates_routes
        else None
    )
    message = commit_message(env, tag, facts.commit, projects, context.run.run_id)
    images_of = image_repos(settings.registry, projects)
    pushed = push_targets(context, gitops, rule.targets, env, tag, images_of, routes, message)
    return {**metadata, **pushed}


def push_targets(
    context,
    gitops: GitOpsResource,
    targets,
    env: str,
    tag: str,
    images: dict[str, str],
    routes: dict | None,
    message: str,
) -> dict:
    """Every target planned on its repo as it is (any refusal before the first push: never one
    region at the new version and the other not), then one commit per repo. Metadata says per
    target what was written where; `gitops_commit` is the first repo's commit."""
    planned = plan_targets(targets, env, images, tag, gitops.read_files, url=gitops.url)
    pushed = {
        repo: gitops.commit_and_push(
            repo, bump_edit(group, env, images, tag, routes), message, log=context.log.info
        )
        for repo, group in by_repo(targets).items()
    }
    first = next(iter(pushed.values()))
    return {
        "gitops_commit": first.commit,
        "changed": any(r.changed for r in pushed.values()),
        "push_attempts": max(r.attempts for r in pushed.values()),
        "remote": gitops.url(first.repo),
        "targets": [
            {
                "name": t.name,
                "repo": t.repo,
                "layout": t.layout,
                "files": sorted(planned[t.name]),
                "commit": pushed[t.repo].commit,
            }
            for t in targets
        ],
    }
