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
from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.release_claim import claim_release
from deploy_assets.checks.published import require_published
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import (
    API_GATEWAY_KEY,
    GITOPS_KEY,
    MANIFEST_KEY,
    ROUTES_KEY,
    ROUTES_OBJECT_KEY,
    artifact_key,
    image_key,
    partition_key,
    split_partition_key,
)
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
    upstream = (
        [image_key(s) for s in services if config.source.kinds[s.kind].dockerfile]
        + [artifact_key(s) for s in services]
        + [ROUTES_KEY, ROUTES_OBJECT_KEY, MANIFEST_KEY]
    )
    # The release record is written before the env moves: a bump never precedes its manifest.
    if any(rule.api_gateway_repo for rule in config.envs.values()):
        upstream.append(API_GATEWAY_KEY)

    @dg.asset(
        key=GITOPS_KEY,
        deps=upstream,
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
        env, tag = split_partition_key(context.partition_key)
        check_partition(tag, env)  # a partition key typed in the UI gets the tag policy too
        partition = partition_key(env, tag)
        claim_release(context.instance, context.run.run_id, partition)
        deployed = latest_for_partition(context.instance, GITOPS_KEY, partition)
        if deployed is not None:
            # Re-running a release never moves the env again: after a newer release or a rollback
            # that would silently re-point it. Moving an env back is what `rollback` is for.
            context.log.info(
                f"{tag} was already deployed to {env} by run {deployed.run_id}; "
                "not bumping again (use `deploy-assets rollback` to re-point the env)"
            )
            return dg.MaterializeResult(
                metadata={
                    **deployed.metadata,
                    "changed": False,
                    "already_deployed_by_run": deployed.run_id,
                }
            )
        facts = release_facts(context.instance, partition, services)
        images, objects = published_keys(facts, config, env)
        rule = config.envs[env]
        require_published(
            context,
            registry,
            s3,
            partition,
            images,
            objects,
            f"GitOps bump of {' '.join(rule.gitops_repos)}",
        )
        projects = deployed_projects(facts, config, env)
        metadata = {
            "repo": " ".join(rule.gitops_repos),
            "mode": rule.gitops_mode,
            "version": tag,
            "projects": projects,
            "commit": facts.commit,
            "updates_routes": rule.updates_routes,
        }
        if rule.gitops_mode == "dispatch":
            outcome = github.dispatch_and_wait(
                rule.gitops_repo,
                UPDATE_VERSION_WORKFLOW,
                {
                    "newVersion": tag,
                    "projectNames": " ".join(projects),
                    "updatesRoutes": str(rule.updates_routes).lower(),
                },
                log=context.log,
            )
            metadata.update(
                {
                    "workflow_run": dg.MetadataValue.url(outcome.html_url),
                    "conclusion": outcome.conclusion,
                }
            )
            return dg.MaterializeResult(metadata=metadata)
        routes = (
            routes_by_service(recorded_routes(context.instance, s3, partition))
            if rule.updates_routes
            else None
        )
        metadata.update(
            push_targets(
                context,
                gitops,
                rule.targets,
                env,
                tag,
                {p: f"{settings.registry}/{p}" for p in projects},
                routes,
                commit_message(env, tag, facts.commit, projects, context.run.run_id),
            )
        )
        return dg.MaterializeResult(metadata=metadata)

    return gitops_bump


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
