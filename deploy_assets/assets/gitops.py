"""The GitOps bump: the env's repo set to the release's version for every project.

It is the last stage and depends on every image and artifact of the release, so it never runs
on a release whose pushes or uploads failed. Git mode commits and pushes; dispatch mode triggers
the old system's workflow through the GitHub API and waits for its conclusion.
"""


import json

import dagster as dg

from deploy_assets.assets.api_gateway import API_GATEWAY_KEY
from deploy_assets.assets.artifacts import MANIFEST_KEY, ROUTES_OBJECT_KEY, artifact_key
from deploy_assets.assets.images import image_key
from deploy_assets.assets.routes import ROUTES_KEY
from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import GITOPS_KEY, latest_for_partition
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service, services_for
from deploy_assets.resources.github import GitHubResource
from deploy_assets.resources.gitops import GitOpsResource, bump_edit, commit_message

UPDATE_VERSION_WORKFLOW = "Update Project List Version"


def build_gitops_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    upstream = ([image_key(s) for s in services if config.source.kinds[s.kind].dockerfile]
                + [artifact_key(s) for s in services] + [ROUTES_KEY, ROUTES_OBJECT_KEY, MANIFEST_KEY])
    # The release record is written before the env moves: a bump never precedes its manifest.
    if any(rule.api_gateway_repo for rule in config.envs.values()):
        upstream.append(API_GATEWAY_KEY)

    @dg.asset(key=GITOPS_KEY, deps=upstream, partitions_def=release_partitions, group_name="deploy",
              kinds={"git"}, pool="gitops",
              description="GitOps repo of the env bumped to the version (newVersion/projectNames/updatesRoutes).")
    def gitops_bump(context: dg.AssetExecutionContext, gitops: GitOpsResource,
                    github: GitHubResource) -> dg.MaterializeResult:
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        source = workspace.source()
        rule = config.envs[release.env]
        projects = [s.name for s in services_for(workspace.services(), rule.deploy)
                    if s.kind in rule.build]
        metadata = {"repo": rule.gitops_repo, "mode": rule.gitops_mode, "version": release.tag,
                    "projects": projects, "commit": source["commit"], "updates_routes": rule.updates_routes}
        deployed = latest_for_partition(context.instance, GITOPS_KEY, context.partition_key)
        if deployed is not None:
            # Re-running a release never moves the env again: after a newer release or a rollback
            # that would silently re-point it. Moving an env back is what `rollback` is for.
            context.log.info(f"{release.tag} was already deployed to {release.env} by run {deployed.run_id}; "
                             "not bumping again (use `deploy-assets rollback` to re-point the env)")
            return dg.MaterializeResult(metadata={**deployed.metadata, "changed": False,
                                                  "already_deployed_by_run": deployed.run_id})
        if rule.gitops_mode == "dispatch":
            outcome = github.dispatch_and_wait(rule.gitops_repo, UPDATE_VERSION_WORKFLOW, {
                "newVersion": release.tag, "projectNames": " ".join(projects),
                "updatesRoutes": str(rule.updates_routes).lower()}, log=context.log)
            metadata.update({"workflow_run": dg.MetadataValue.url(outcome.html_url),
                             "conclusion": outcome.conclusion})
            return dg.MaterializeResult(metadata=metadata)
        routes = None
        if rule.updates_routes:
            routes = {}
            for row in json.loads(workspace.routes_file().read_text()):
                routes.setdefault(row["service"], []).append({"method": row["method"], "path": row["path"]})
        images = {p: f"{settings.registry}/{p}" for p in projects}
        result = gitops.commit_and_push(
            rule.gitops_repo, bump_edit(rule.gitops, release.env, images, release.tag, routes),
            commit_message(release.env, release.tag, source["commit"], projects, context.run.run_id),
            log=context.log.info)
        metadata.update({"gitops_commit": result.commit, "changed": result.changed,
                         "push_attempts": result.attempts, "remote": gitops.url(rule.gitops_repo)})
        return dg.MaterializeResult(metadata=metadata)

    return gitops_bump
