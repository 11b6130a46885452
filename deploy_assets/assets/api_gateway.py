"""API-gateway routes in the Terraform repo (prod): the old "Update API Gateway Routes" step.

It runs after every image and S3 object of the release is published (prod's lambdas are S3
objects the gateway invokes) and before the GitOps bump, so the gateway knows a route before a
pod serving it goes live, and a failed push or upload never reaches the gateway. Like the bump,
it passes the deploy gate first (checks/published.py) and reads its inputs from the instance
and the bucket, so a run of this asset alone can neither skip the uploads nor need a work folder.
Git mode writes one tfvars file; dispatch mode triggers the old workflow and waits for it.
"""

import json
from pathlib import Path

import dagster as dg

from deploy_assets.assets.deploy_inputs import published_keys, recorded_routes, release_facts
from deploy_assets.assets.gitops_decisions import api_gateway_upstream, workflow_metadata
from deploy_assets.assets.partitions import release_partitions
from deploy_assets.assets.release_claim import claim_release
from deploy_assets.checks.published import require_published
from deploy_assets.config import PipelineConfig, Settings
from deploy_assets.names import (
    API_GATEWAY_KEY,  # re-exported
    partition_key,
    split_partition_key,
)
from deploy_assets.plan import Service
from deploy_assets.resources.github import GitHubResource
from deploy_assets.resources.gitops import Edit, GitOpsResource, commit_message
from deploy_assets.resources.registry import RegistryResource
from deploy_assets.resources.s3 import S3Resource
from deploy_assets.tags import check_partition

UPDATE_ROUTES_WORKFLOW = "Update API Gateway Routes"
ROUTES_TFVARS = "api_gateway/routes.auto.tfvars.json"


def routes_tfvars_edit(version: str, routes: list[dict]) -> Edit:
    """Terraform reads *.auto.tfvars.json by itself: the gateway module needs no wiring change."""

    def edit(repo: Path) -> None:
        target = repo / ROUTES_TFVARS
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"api_version": version, "routes": routes}, indent=2) + "\n")

    return edit


def build_api_gateway_asset(
    services: list[Service], config: PipelineConfig, settings: Settings
) -> dg.AssetsDefinition:
    @dg.asset(
        key=API_GATEWAY_KEY,
        deps=api_gateway_upstream(services, config),
        partitions_def=release_partitions,
        group_name="deploy",
        kinds={"terraform"},
        pool="gitops",
        description="API-gateway routes in the Terraform repo (prod), before the GitOps bump.",
    )
    def api_gateway_routes(
        context: dg.AssetExecutionContext,
        gitops: GitOpsResource,
        github: GitHubResource,
        registry: RegistryResource,
        s3: S3Resource,
    ) -> dg.MaterializeResult:
        resources = (gitops, github, registry, s3)
        return dg.MaterializeResult(metadata=update_routes(context, resources, services, config))

    return api_gateway_routes


def update_routes(
    context: dg.AssetExecutionContext,
    resources: tuple[GitOpsResource, GitHubResource, RegistryResource, S3Resource],
    services: list[Service],
    config: PipelineConfig,
) -> dict:
    """The gateway update of one release partition, after the deploy gate; its metadata."""
    gitops, github, registry, s3 = resources
    env, tag = split_partition_key(context.partition_key)
    check_partition(tag, env)
    partition, rule = partition_key(env, tag), config.envs[env]
    claim_release(context.instance, context.run.run_id, partition)
    if not rule.api_gateway_repo:
        raise RuntimeError(f"{env} has no api_gateway_repo configured")
    facts = release_facts(context.instance, partition, services)
    images, objects = published_keys(facts, config, env)
    what = f"API-gateway update of {rule.api_gateway_repo}"
    require_published(context, registry, s3, partition, images, objects, what)
    routes = recorded_routes(context.instance, s3, partition)
    metadata = {
        "repo": rule.api_gateway_repo,
        "mode": rule.gitops_mode,
        "routes": len(routes),
        "version": tag,
    }
    if rule.gitops_mode == "dispatch":
        outcome = github.dispatch_and_wait(
            rule.api_gateway_repo, UPDATE_ROUTES_WORKFLOW, {"newVersion": tag}, log=context.log
        )
        return {**metadata, **workflow_metadata(outcome)}
    result = gitops.commit_and_push(
        rule.api_gateway_repo,
        routes_tfvars_edit(tag, routes),
        commit_message(env, tag, facts.commit, ["api-gateway-routes"], context.run.run_id),
        log=context.log.info,
    )
    return {
        **metadata,
        "gitops_commit": result.commit,
        "changed": result.changed,
        "push_attempts": result.attempts,
        "path": ROUTES_TFVARS,
    }
