"""The GitOps bump: the env's repo set to the release's version for every project.

It is the last stage and depends on every image and artifact of the release, so it never runs
on a release whose pushes or uploads failed. Git mode commits and pushes; dispatch mode triggers
the old system's workflow through the GitHub API and waits for its conclusion.
"""


import json

import dagster as dg

from deploy_assets.assets.artifacts import ROUTES_OBJECT_KEY, artifact_key
from deploy_assets.assets.images import image_key
from deploy_assets.assets.routes import ROUTES_KEY
from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.history import GITOPS_KEY
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service, services_for
from deploy_assets.resources.github import GitHubResource
from deploy_assets.resources.gitops import GitOpsResource, bump_edit

API_GATEWAY_KEY = dg.AssetKey("api_gateway_routes")
UPDATE_VERSION_WORKFLOW = "Update Project List Version"
UPDATE_ROUTES_WORKFLOW = "Update API Gateway Routes"


def commit_message(env: str, tag: str, commit: str, projects: list[str], run_id: str) -> str:
    return (f"deploy({env}): {' '.join(projects)} -> {tag}\n\n"
            f"Release-Tag: {tag}\nSource-Commit: {commit}\nDagster-Run: {run_id}\n")


def build_gitops_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    upstream = ([image_key(s) for s in services if config.source.kinds[s.kind].dockerfile]
                + [artifact_key(s) for s in services] + [ROUTES_KEY, ROUTES_OBJECT_KEY])
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


def build_api_gateway_asset(services: list[Service], config: PipelineConfig, settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(key=API_GATEWAY_KEY, deps=[ROUTES_KEY] + [image_key(s) for s in services
                                                         if config.source.kinds[s.kind].dockerfile],
              partitions_def=release_partitions, group_name="deploy", kinds={"terraform"}, pool="gitops",
              description="API-gateway routes in the Terraform repo (prod), before the GitOps bump.")
    def api_gateway_routes(context: dg.AssetExecutionContext, gitops: GitOpsResource,
                           github: GitHubResource) -> dg.MaterializeResult:
        workspace, release = ReleaseWorkspace.for_context(context, settings.work_dir)
        rule = config.envs[release.env]
        if not rule.api_gateway_repo:
            raise RuntimeError(f"{release.env} has no api_gateway_repo configured")
        routes = json.loads(workspace.routes_file().read_text())
        metadata = {"repo": rule.api_gateway_repo, "routes": len(routes), "version": release.tag}
        if rule.gitops_mode == "dispatch":
            outcome = github.dispatch_and_wait(rule.api_gateway_repo, UPDATE_ROUTES_WORKFLOW,
                                               {"newVersion": release.tag}, log=context.log)
            metadata["workflow_run"] = dg.MetadataValue.url(outcome.html_url)
            return dg.MaterializeResult(metadata=metadata)

        def edit(repo):
            target = repo / "api_gateway" / "routes.auto.tfvars.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps({"api_version": release.tag, "routes": routes}, indent=2) + "\n")

        source = workspace.source()
        result = gitops.commit_and_push(
            rule.api_gateway_repo, edit,
            commit_message(release.env, release.tag, source["commit"], ["api-gateway-routes"], context.run.run_id),
            log=context.log.info)
        metadata.update({"gitops_commit": result.commit, "changed": result.changed})
        return dg.MaterializeResult(metadata=metadata)

    return api_gateway_routes
