"""API-gateway routes in the Terraform repo (prod): the old "Update API Gateway Routes" step.

It runs after every image of the release is pushed and before the GitOps bump, so the gateway
knows a route before a pod serving it goes live, and a failed push never reaches the gateway.
Git mode writes one tfvars file; dispatch mode triggers the old workflow and waits for it.
"""


import json
from pathlib import Path

import dagster as dg

from deploy_assets.assets.images import image_key
from deploy_assets.assets.routes import ROUTES_KEY
from deploy_assets.assets.workspace import ReleaseWorkspace
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.partitions import release_partitions
from deploy_assets.plan import Service
from deploy_assets.resources.github import GitHubResource
from deploy_assets.resources.gitops import Edit, GitOpsResource, commit_message

API_GATEWAY_KEY = dg.AssetKey("api_gateway_routes")
UPDATE_ROUTES_WORKFLOW = "Update API Gateway Routes"
ROUTES_TFVARS = "api_gateway/routes.auto.tfvars.json"


def routes_tfvars_edit(version: str, routes: list[dict]) -> Edit:
    """Terraform reads *.auto.tfvars.json by itself: the gateway module needs no wiring change."""

    def edit(repo: Path) -> None:
        target = repo / ROUTES_TFVARS
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"api_version": version, "routes": routes}, indent=2) + "\n")
    return edit


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
        metadata = {"repo": rule.api_gateway_repo, "mode": rule.gitops_mode, "routes": len(routes),
                    "version": release.tag}
        if rule.gitops_mode == "dispatch":
            outcome = github.dispatch_and_wait(rule.api_gateway_repo, UPDATE_ROUTES_WORKFLOW,
                                               {"newVersion": release.tag}, log=context.log)
            metadata.update({"workflow_run": dg.MetadataValue.url(outcome.html_url),
                             "conclusion": outcome.conclusion})
            return dg.MaterializeResult(metadata=metadata)
        result = gitops.commit_and_push(
            rule.api_gateway_repo, routes_tfvars_edit(release.tag, routes),
            commit_message(release.env, release.tag, workspace.source()["commit"], ["api-gateway-routes"],
                           context.run.run_id),
            log=context.log.info)
        metadata.update({"gitops_commit": result.commit, "changed": result.changed,
                         "push_attempts": result.attempts, "path": ROUTES_TFVARS})
        return dg.MaterializeResult(metadata=metadata)

    return api_gateway_routes
