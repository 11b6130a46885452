"""What the GitOps bump and the API-gateway update decide, as plain functions: their upstream
assets (from the release matrix), the metadata they record, the inputs of the old workflows in
dispatch mode. The asset bodies (gitops.py, api_gateway.py) only wire resources to these, so the
decisions are unit-tested without a repo, a registry or GitHub."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from deploy_assets.config import EnvRule, PipelineConfig
from deploy_assets.matrix import ReleaseMatrix
from deploy_assets.names import (
    API_GATEWAY_KEY,
    MANIFEST_KEY,
    ROUTES_KEY,
    ROUTES_OBJECT_KEY,
    artifact_key,
    image_key,
)

if TYPE_CHECKING:
    from deploy_assets.plan import Service
    from deploy_assets.resources.github import WorkflowRunOutcome


def gitops_upstream(services: Sequence[Service], config: PipelineConfig) -> list[dg.AssetKey]:
    """Every image and artifact of the code location, the routes and the release record, and the
    API-gateway update when an env has one: the release record is written and the gateway knows
    the routes before the env moves, so a bump never precedes its manifest."""
    matrix = ReleaseMatrix.of(config, services)
    upstream = (
        [image_key(s) for s in matrix.imaged]
        + [artifact_key(s) for s in services]
        + [ROUTES_KEY, ROUTES_OBJECT_KEY, MANIFEST_KEY]
    )
    if any(e.updates_api_gateway for e in matrix.envs.values()):
        upstream.append(API_GATEWAY_KEY)
    return upstream


def api_gateway_upstream(services: Sequence[Service], config: PipelineConfig) -> list[dg.AssetKey]:
    """The routes and every image and artifact: a failed push or upload never reaches the
    gateway (prod's lambdas are S3 objects the gateway invokes)."""
    return (
        [ROUTES_KEY, ROUTES_OBJECT_KEY]
        + [image_key(s) for s in ReleaseMatrix.of(config, services).imaged]
        + [artifact_key(s) for s in services]
    )


def already_deployed(tag: str, env: str, metadata: Mapping, run_id: str) -> tuple[str, dict]:
    """A re-run of a deployed release never moves the env again (after a newer release or a
    rollback that would silently re-point it): the log line and the metadata it records."""
    message = (
        f"{tag} was already deployed to {env} by run {run_id}; "
        "not bumping again (use `deploy-assets rollback` to re-point the env)"
    )
    return message, {**metadata, "changed": False, "already_deployed_by_run": run_id}


def bump_metadata(rule: EnvRule, tag: str, projects: list[str], commit: str) -> dict:
    """What every bump records, whichever its mode."""
    return {
        "repo": " ".join(rule.gitops_repos),
        "mode": rule.gitops_mode,
        "version": tag,
        "projects": projects,
        "commit": commit,
        "updates_routes": rule.updates_routes,
    }


def version_workflow_inputs(tag: str, projects: list[str], updates_routes: bool) -> dict:
    """The inputs of the old "Update Project List Version" workflow (dispatch mode)."""
    return {
        "newVersion": tag,
        "projectNames": " ".join(projects),
        "updatesRoutes": str(updates_routes).lower(),
    }


def workflow_metadata(outcome: WorkflowRunOutcome) -> dict:
    """The dispatched workflow run, linked from the materialization."""
    return {
        "workflow_run": dg.MetadataValue.url(outcome.html_url),
        "conclusion": outcome.conclusion,
    }


def image_repos(registry: str, projects: list[str]) -> dict[str, str]:
    """project -> its image repository, as the GitOps files name it."""
    return {p: f"{registry}/{p}" for p in projects}
